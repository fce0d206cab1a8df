import { useState, type FormEvent } from "react";
import { useParams } from "react-router-dom";
import { api, asProblem, type Problem, type Schemas } from "../../../api/client";
import { KeysetList, useLoad } from "../../../components/list";
import { Badge, Button, Card, ErrorBox, Field, fmtDate, Loading, PageHeader, Select } from "../../../components/ui";

type Activity = Schemas["Activity"];

export default function ContactDetail() {
  const { id = "" } = useParams();
  const c = useLoad(() => api.GET("/api/v1/crm/contacts/{id}", { params: { path: { id } } }), [id]);
  const [reload, setReload] = useState(0);
  const [type, setType] = useState("note");
  const [subject, setSubject] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  if (c.loading && !c.data) return <Loading />;
  if (!c.data) return <ErrorBox problem={c.problem} />;
  const contact = c.data;

  const add = async (e: FormEvent) => {
    e.preventDefault();
    const r = await api.POST("/api/v1/crm/activities", { body: { type, subject, contact_id: id } as Schemas["ActivityCreate"] });
    if (r.error) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setSubject("");
    setReload((n) => n + 1);
  };

  return (
    <div className="space-y-4">
      <PageHeader title={[contact.first_name, contact.last_name].filter(Boolean).join(" ") || contact.email || "Contact"}>
        <p className="text-sm text-slate-600 dark:text-slate-400">
          {contact.email} · {contact.phone ?? "no phone"} · <Badge tone="indigo">{contact.lifecycle_stage}</Badge>
        </p>
      </PageHeader>
      <Card title="Log an activity">
        <form onSubmit={add} className="flex flex-wrap items-end gap-3">
          <div className="w-36">
            <Select label="Type" value={type} onChange={setType} options={["note", "call", "email", "meeting", "task"].map((t) => ({ value: t, label: t }))} />
          </div>
          <div className="min-w-[12rem] flex-1">
            <Field label="Subject" name="subject" value={subject} onChange={setSubject} required />
          </div>
          <Button kind="primary" type="submit">Add</Button>
        </form>
        <ErrorBox problem={problem} />
      </Card>
      <h2 className="text-lg font-semibold">Timeline</h2>
      <KeysetList<Activity>
        caption="Timeline"
        reloadKey={reload}
        fetchPage={(query) => api.GET("/api/v1/crm/contacts/{id}/timeline", { params: { path: { id }, query } })}
        rowKey={(a) => a.id}
        empty="No activity yet."
        columns={[
          { header: "When", cell: (a) => fmtDate(a.created_at) },
          { header: "Type", cell: (a) => <Badge>{a.type}</Badge> },
          { header: "Subject", cell: (a) => a.subject ?? "—" },
          { header: "Done", cell: (a) => (a.done ? "yes" : "no") },
        ]}
      />
    </div>
  );
}
