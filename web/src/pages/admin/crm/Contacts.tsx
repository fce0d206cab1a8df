import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../../api/client";
import { KeysetList } from "../../../components/list";
import { Badge, Button, Card, ErrorBox, Field, Modal, PageHeader, Select } from "../../../components/ui";

type Contact = Schemas["Contact"];
type Report = Schemas["ImportReport"];
const STAGES = ["lead", "qualified", "customer", "churned"];

export default function Contacts() {
  const [params] = useSearchParams();
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ first_name: "", last_name: "", email: "", phone: "", lifecycle_stage: "lead" });
  const [problem, setProblem] = useState<Problem | null>(null);
  const [importOpen, setImportOpen] = useState(false);
  const [csv, setCsv] = useState("");
  const [partial, setPartial] = useState(true);
  const [report, setReport] = useState<Report | null>(null);
  const [importProblem, setImportProblem] = useState<Problem | null>(null);
  const set = (k: keyof typeof form) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body: Record<string, string> = { lifecycle_stage: form.lifecycle_stage };
    if (form.first_name) body.first_name = form.first_name;
    if (form.last_name) body.last_name = form.last_name;
    if (form.email) body.email = form.email;
    if (form.phone) body.phone = form.phone;
    const r = await api.POST("/api/v1/crm/contacts", { body: body as Schemas["ContactCreate"] });
    if (r.error) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setForm({ first_name: "", last_name: "", email: "", phone: "", lifecycle_stage: "lead" });
    setReload((n) => n + 1);
  };

  const runImport = async (e: FormEvent) => {
    e.preventDefault();
    const r = await api.POST("/api/v1/crm/contacts/import", {
      params: { query: partial ? { partial: "true" } : {} },
      body: csv as never,
      bodySerializer: (b: unknown) => b as string,
      headers: { "Content-Type": "text/csv" },
    });
    if (r.error || !r.data) {
      setReport(null);
      const p = asProblem(r.error, r.response.status);
      setImportProblem(p);
      const maybe = r.error as unknown as Partial<Report> | undefined;
      if (maybe && Array.isArray(maybe.errors) && typeof maybe.rows === "number") setReport(maybe as Report);
      return;
    }
    setImportProblem(null);
    setReport(r.data);
    setReload((n) => n + 1);
  };

  const exportCsv = async () => {
    const query: Record<string, string> = {};
    for (const k of ["q", "lifecycle_stage"]) {
      const v = params.get(k);
      if (v) query[k] = v;
    }
    const r = await api.GET("/api/v1/crm/contacts/export", { params: { query }, parseAs: "blob" });
    if (!r.data) return setImportProblem(asProblem(r.error, r.response.status));
    const url = URL.createObjectURL(r.data as Blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = "contacts.csv";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const readFile = async (f: File | undefined) => {
    if (f) setCsv(await f.text());
  };

  return (
    <div>
      <PageHeader
        title="Contacts"
        actions={
          <>
            <Button onClick={() => void exportCsv()}>Export CSV</Button>
            <Button onClick={() => { setReport(null); setImportOpen(true); }}>Import CSV</Button>
            <Button kind="primary" onClick={() => setOpen(true)}>New contact</Button>
          </>
        }
      />
      <ErrorBox problem={importOpen ? null : importProblem} />
      <KeysetList<Contact>
        caption="Contacts"
        reloadKey={reload}
        searchLabel="Search names and email"
        filters={[
          { name: "lifecycle_stage", label: "Stage", options: STAGES.map((s) => ({ value: s, label: s })) },
          { name: "sort", label: "Sort", options: [{ value: "-created_at", label: "Newest" }, { value: "created_at", label: "Oldest" }, { value: "-updated_at", label: "Recently changed" }] },
        ]}
        fetchPage={(query) => api.GET("/api/v1/crm/contacts", { params: { query } })}
        rowKey={(c) => c.id}
        empty="No contacts match."
        columns={[
          {
            header: "Name",
            cell: (c) => (
              <Link className="text-indigo-700 underline dark:text-indigo-300" to={`/crm/contacts/${c.id}`}>
                {[c.first_name, c.last_name].filter(Boolean).join(" ") || c.email || c.id}
              </Link>
            ),
          },
          { header: "Email", cell: (c) => c.email ?? "—" },
          { header: "Phone", cell: (c) => c.phone ?? "—" },
          { header: "Stage", cell: (c) => <Badge tone="indigo">{c.lifecycle_stage}</Badge> },
          { header: "Tags", cell: (c) => c.tags.join(", ") },
        ]}
      />
      <Modal title="New contact" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="First name" name="first_name" value={form.first_name} onChange={set("first_name")} errors={fieldErrors(problem)} />
          <Field label="Last name" name="last_name" value={form.last_name} onChange={set("last_name")} errors={fieldErrors(problem)} />
          <Field label="Email" name="email" type="email" value={form.email} onChange={set("email")} errors={fieldErrors(problem)} />
          <Field label="Phone" name="phone" value={form.phone} onChange={set("phone")} errors={fieldErrors(problem)} />
          <Select label="Lifecycle stage" name="lifecycle_stage" value={form.lifecycle_stage} onChange={set("lifecycle_stage")} options={STAGES.map((s) => ({ value: s, label: s }))} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create contact</Button>
        </form>
      </Modal>
      <Modal title="Import contacts from CSV" open={importOpen} onClose={() => setImportOpen(false)}>
        <form onSubmit={runImport} className="space-y-3">
          <div>
            <label htmlFor="csv-file" className="block text-sm font-medium">CSV file</label>
            <input id="csv-file" type="file" accept=".csv,text/csv" onChange={(e) => void readFile(e.target.files?.[0])} className="text-sm" />
          </div>
          <Field label="Or paste CSV (header row: first_name,last_name,email,…)" name="csv" value={csv} onChange={setCsv} multiline />
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" checked={partial} onChange={(e) => setPartial(e.target.checked)} /> Import the valid rows even if some fail
          </label>
          <ErrorBox problem={importProblem} />
          <Button kind="primary" type="submit" disabled={!csv}>Import</Button>
        </form>
        {report && (
          <Card title="Import report" className="mt-3">
            <p className="text-sm" data-testid="import-summary">
              {report.rows} rows: {report.created} created, {report.failed} failed.
            </p>
            {report.errors.length > 0 && (
              <table className="mt-2 w-full text-left text-xs">
                <caption className="sr-only">Rows that failed</caption>
                <thead>
                  <tr>
                    <th scope="col">Row</th>
                    <th scope="col">Errors</th>
                  </tr>
                </thead>
                <tbody>
                  {report.errors.map((er) => (
                    <tr key={er.row}>
                      <td className="pr-2 align-top">{er.row}</td>
                      <td>{(er.errors ?? []).map((x) => `${x.field}: ${x.message}`).join("; ")}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
        )}
      </Modal>
    </div>
  );
}
