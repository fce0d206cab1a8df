import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { Button, Checkbox, ErrorBox, Field, Modal, PageHeader } from "../../components/ui";

type Plan = Schemas["Plan"];
const MODULES = ["auth", "crm", "cms", "billing", "analytics"];
const empty = { key: "", name: "", rate_limit_per_minute: "6000", max_users: "100", max_api_keys: "20", max_upload_mb: "25", modules: MODULES };

export default function Plans() {
  const [reload, setReload] = useState(0);
  const [editing, setEditing] = useState<Plan | null>(null);
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState(empty);
  const [problem, setProblem] = useState<Problem | null>(null);
  const set = (k: keyof typeof empty) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  const start = (p: Plan | null) => {
    setEditing(p);
    setProblem(null);
    setForm(
      p
        ? { key: p.key, name: p.name, rate_limit_per_minute: String(p.rate_limit_per_minute), max_users: String(p.max_users), max_api_keys: String(p.max_api_keys), max_upload_mb: String(p.max_upload_mb), modules: p.modules }
        : empty,
    );
    setOpen(true);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    const nums = { rate_limit_per_minute: Number(form.rate_limit_per_minute), max_users: Number(form.max_users), max_api_keys: Number(form.max_api_keys), max_upload_mb: Number(form.max_upload_mb) };
    const r = editing
      ? await api.PATCH("/api/v1/plans/{id}", { params: { path: { id: editing.id } }, body: { name: form.name, modules: form.modules, ...nums } })
      : await api.POST("/api/v1/plans", { body: { key: form.key, name: form.name, modules: form.modules, ...nums } });
    if (r.error) return setProblem(asProblem(r.error, r.response.status));
    setOpen(false);
    setReload((n) => n + 1);
  };
  const fe = fieldErrors(problem);

  return (
    <div>
      <PageHeader title="Plans" actions={<Button kind="primary" onClick={() => start(null)}>New plan</Button>} />
      <KeysetList<Plan>
        caption="Plans"
        reloadKey={reload}
        fetchPage={(query) => api.GET("/api/v1/plans", { params: { query } })}
        rowKey={(p) => p.id}
        columns={[
          { header: "Key", cell: (p) => <code>{p.key}</code> },
          { header: "Name", cell: (p) => p.name },
          { header: "Requests/min", cell: (p) => p.rate_limit_per_minute },
          { header: "Max users", cell: (p) => p.max_users },
          { header: "Max API keys", cell: (p) => p.max_api_keys },
          { header: "Upload MiB", cell: (p) => p.max_upload_mb },
          { header: "Modules", cell: (p) => p.modules.join(", ") },
          { header: "Actions", cell: (p) => <Button onClick={() => start(p)} aria-label={`Edit ${p.key}`}>Edit</Button> },
        ]}
      />
      <Modal title={editing ? `Edit plan ${editing.key}` : "New plan"} open={open} onClose={() => setOpen(false)}>
        <form onSubmit={save} className="grid grid-cols-1 gap-3 sm:grid-cols-2">
          {!editing && <Field label="Key" name="key" value={form.key} onChange={set("key")} required errors={fe} />}
          <Field label="Name" name="name" value={form.name} onChange={set("name")} required errors={fe} />
          <Field label="Requests per minute" name="rate_limit_per_minute" type="number" value={form.rate_limit_per_minute} onChange={set("rate_limit_per_minute")} errors={fe} />
          <Field label="Max users" name="max_users" type="number" value={form.max_users} onChange={set("max_users")} errors={fe} />
          <Field label="Max API keys" name="max_api_keys" type="number" value={form.max_api_keys} onChange={set("max_api_keys")} errors={fe} />
          <Field label="Max upload (MiB)" name="max_upload_mb" type="number" value={form.max_upload_mb} onChange={set("max_upload_mb")} errors={fe} />
          <fieldset className="sm:col-span-2">
            <legend className="text-sm font-medium">Modules</legend>
            <div className="mt-1 flex flex-wrap gap-3">
              {MODULES.map((m) => (
                <Checkbox key={m} label={m} checked={form.modules.includes(m)} onChange={(c) => setForm((f) => ({ ...f, modules: c ? [...f.modules, m] : f.modules.filter((x) => x !== m) }))} />
              ))}
            </div>
            {fe.modules && <p className="text-xs text-red-700">{fe.modules}</p>}
          </fieldset>
          <div className="sm:col-span-2">
            <ErrorBox problem={problem} />
            <Button kind="primary" type="submit" className="mt-2">
              Save plan
            </Button>
          </div>
        </form>
      </Modal>
    </div>
  );
}
