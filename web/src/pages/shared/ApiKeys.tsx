import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, tenantHeader, type Problem, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { Badge, Button, ErrorBox, Field, fmtDate, Modal, PageHeader, SecretOnce, Select } from "../../components/ui";

type Key = Schemas["ApiKey"];

export default function ApiKeys({ tenant }: { tenant?: string }) {
  const h = tenantHeader(tenant);
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [type, setType] = useState<"secret" | "publishable">("secret");
  const [scopes, setScopes] = useState("");
  const [expires, setExpires] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [shown, setShown] = useState<string | null>(null);
  const [rowProblem, setRowProblem] = useState<Problem | null>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body: Schemas["ApiKeyCreate"] = { name, type };
    const sc = scopes.split(/[\s,]+/).filter(Boolean);
    if (sc.length) body.scopes = sc;
    if (expires) body.expires_at = new Date(expires).toISOString();
    const r = await api.POST("/api/v1/auth/api-keys", { body, params: { header: h } });
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setShown(r.data.key ?? null);
    setName("");
    setScopes("");
    setExpires("");
    setReload((n) => n + 1);
  };

  const revoke = async (k: Key) => {
    if (!window.confirm(`Revoke the key "${k.name}"? Apps using it stop working.`)) return;
    const r = await api.DELETE("/api/v1/auth/api-keys/{id}", { params: { path: { id: k.id }, header: h } });
    setRowProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setReload((n) => n + 1);
  };

  return (
    <div>
      <PageHeader title="API keys" actions={<Button kind="primary" onClick={() => { setShown(null); setOpen(true); }}>New API key</Button>} />
      {shown && <SecretOnce label="Your new API key" secret={shown} />}
      <ErrorBox problem={rowProblem} />
      <div className="mt-3">
        <KeysetList<Key>
          caption="API keys"
          reloadKey={reload}
          filters={[{ name: "type", label: "Type", options: [{ value: "secret", label: "Secret" }, { value: "publishable", label: "Publishable" }] }]}
          fetchPage={(query) => api.GET("/api/v1/auth/api-keys", { params: { query, header: h } })}
          rowKey={(k) => k.id}
          empty="No API keys yet."
          columns={[
            { header: "Name", cell: (k) => k.name },
            { header: "Type", cell: (k) => <Badge tone={k.type === "secret" ? "amber" : "indigo"}>{k.type}</Badge> },
            { header: "Prefix", cell: (k) => <code>{k.prefix}…</code> },
            { header: "Scopes", cell: (k) => (k.scopes ?? []).join(", ") || "—" },
            { header: "Expires", cell: (k) => fmtDate(k.expires_at) },
            { header: "Last used", cell: (k) => fmtDate(k.last_used_at) },
            { header: "Status", cell: (k) => (k.revoked_at ? <Badge tone="red">revoked</Badge> : <Badge tone="green">active</Badge>) },
            { header: "Actions", cell: (k) => (k.revoked_at ? null : <Button kind="danger" onClick={() => void revoke(k)}>Revoke</Button>) },
          ]}
        />
      </div>
      <Modal title="New API key" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="Name" name="name" value={name} onChange={setName} required errors={fieldErrors(problem)} />
          <Select label="Type" name="type" value={type} onChange={(v) => setType(v as "secret" | "publishable")} options={[{ value: "secret", label: "Secret (servers)" }, { value: "publishable", label: "Publishable (browsers, apps)" }]} />
          <Field label="Scopes" name="scopes" value={scopes} onChange={setScopes} hint="Space or comma separated; empty for the type's default" errors={fieldErrors(problem)} />
          <Field label="Expires at" name="expires_at" type="datetime-local" value={expires} onChange={setExpires} errors={fieldErrors(problem)} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create key</Button>
        </form>
      </Modal>
    </div>
  );
}
