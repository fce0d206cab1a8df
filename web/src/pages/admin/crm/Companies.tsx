import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../../api/client";
import { KeysetList } from "../../../components/list";
import { Button, ErrorBox, Field, Modal, PageHeader } from "../../../components/ui";

type Company = Schemas["Company"];

export default function Companies() {
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ name: "", domain: "", industry: "" });
  const [problem, setProblem] = useState<Problem | null>(null);
  const set = (k: keyof typeof form) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body: Schemas["CompanyCreate"] = { name: form.name };
    if (form.domain) body.domain = form.domain;
    if (form.industry) body.industry = form.industry;
    const r = await api.POST("/api/v1/crm/companies", { body });
    if (r.error) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setForm({ name: "", domain: "", industry: "" });
    setReload((n) => n + 1);
  };

  return (
    <div>
      <PageHeader title="Companies" actions={<Button kind="primary" onClick={() => setOpen(true)}>New company</Button>} />
      <KeysetList<Company>
        caption="Companies"
        reloadKey={reload}
        searchLabel="Search companies"
        filters={[{ name: "sort", label: "Sort", options: [{ value: "-created_at", label: "Newest" }, { value: "created_at", label: "Oldest" }, { value: "-updated_at", label: "Recently changed" }] }]}
        fetchPage={(query) => api.GET("/api/v1/crm/companies", { params: { query } })}
        rowKey={(c) => c.id}
        empty="No companies match."
        columns={[
          { header: "Name", cell: (c) => c.name },
          { header: "Domain", cell: (c) => c.domain ?? "—" },
          { header: "Industry", cell: (c) => c.industry ?? "—" },
          { header: "Size", cell: (c) => c.size ?? "—" },
        ]}
      />
      <Modal title="New company" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="Name" name="name" value={form.name} onChange={set("name")} required errors={fieldErrors(problem)} />
          <Field label="Domain" name="domain" value={form.domain} onChange={set("domain")} errors={fieldErrors(problem)} />
          <Field label="Industry" name="industry" value={form.industry} onChange={set("industry")} errors={fieldErrors(problem)} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create company</Button>
        </form>
      </Modal>
    </div>
  );
}
