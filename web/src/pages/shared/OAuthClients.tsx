import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, tenantHeader, type Problem, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { Badge, Button, ErrorBox, Field, Modal, PageHeader, SecretOnce, Select } from "../../components/ui";

type Client = Schemas["OAuthClient"];
const lines = (s: string) => s.split(/[\s,]+/).filter(Boolean);

export default function OAuthClients({ tenant }: { tenant?: string }) {
  const h = tenantHeader(tenant);
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [type, setType] = useState("confidential");
  const [redirects, setRedirects] = useState("");
  const [origins, setOrigins] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [secret, setSecret] = useState<string | null>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body = { name, type, redirect_uris: lines(redirects), allowed_origins: lines(origins) } as Schemas["OAuthClientCreate"];
    const r = await api.POST("/api/v1/auth/clients", { body, params: { header: h } });
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setSecret(r.data.client_secret ? `${r.data.client_id} / ${r.data.client_secret}` : null);
    setReload((n) => n + 1);
  };

  const remove = async (c: Client) => {
    if (!window.confirm(`Delete the OAuth client "${c.name}"?`)) return;
    await api.DELETE("/api/v1/auth/clients/{id}", { params: { path: { id: c.id }, header: h } });
    setReload((n) => n + 1);
  };

  return (
    <div>
      <PageHeader title="OAuth clients" actions={<Button kind="primary" onClick={() => setOpen(true)}>New client</Button>} />
      {secret && <SecretOnce label="Client id / secret" secret={secret} />}
      <div className="mt-3">
        <KeysetList<Client>
          caption="OAuth clients"
          reloadKey={reload}
          fetchPage={(query) => api.GET("/api/v1/auth/clients", { params: { query, header: h } })}
          rowKey={(c) => c.id}
          empty="No OAuth clients yet."
          columns={[
            { header: "Name", cell: (c) => c.name },
            { header: "Client id", cell: (c) => <code className="break-all">{c.client_id}</code> },
            { header: "Type", cell: (c) => <Badge>{c.type}</Badge> },
            { header: "Grants", cell: (c) => c.grant_types.join(", ") },
            { header: "Redirect URIs", cell: (c) => c.redirect_uris.join(" ") || "—" },
            { header: "Actions", cell: (c) => <Button kind="danger" onClick={() => void remove(c)}>Delete</Button> },
          ]}
        />
      </div>
      <Modal title="New OAuth client" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="Name" name="name" value={name} onChange={setName} required errors={fieldErrors(problem)} />
          <Select label="Type" name="type" value={type} onChange={setType} options={[{ value: "confidential", label: "Confidential (has a secret)" }, { value: "public", label: "Public (PKCE)" }]} />
          <Field label="Redirect URIs" name="redirect_uris" value={redirects} onChange={setRedirects} multiline hint="One per line" errors={fieldErrors(problem)} />
          <Field label="Allowed origins" name="allowed_origins" value={origins} onChange={setOrigins} multiline hint="One per line" errors={fieldErrors(problem)} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create client</Button>
        </form>
      </Modal>
    </div>
  );
}
