import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { Badge, Button, Card, Checkbox, ErrorBox, Field, fmtDate, Modal, PageHeader, SecretOnce } from "../../components/ui";

type Endpoint = Schemas["WebhookEndpoint"];
type Delivery = Schemas["WebhookDelivery"];

export default function Webhooks() {
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [url, setUrl] = useState("");
  const [types, setTypes] = useState("crm.*");
  const [description, setDescription] = useState("");
  const [enabled, setEnabled] = useState(true);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [selected, setSelected] = useState<Endpoint | null>(null);
  const [actionProblem, setActionProblem] = useState<Problem | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [dReload, setDReload] = useState(0);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body: Schemas["WebhookEndpointCreate"] = { url, event_types: types.split(/[\s,]+/).filter(Boolean), enabled };
    if (description) body.description = description;
    const r = await api.POST("/api/v1/webhooks/endpoints", { body });
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setSecret(r.data.secret ?? null);
    setReload((n) => n + 1);
  };

  const act = async (what: "test" | "rotate" | "delete" | "toggle" | "replay", ep: Endpoint) => {
    const path = { params: { path: { id: ep.id } } };
    let r: { error?: unknown; response: Response; data?: unknown };
    if (what === "test") r = await api.POST("/api/v1/webhooks/endpoints/{id}/test", path);
    else if (what === "rotate") r = await api.POST("/api/v1/webhooks/endpoints/{id}/rotate-secret", path);
    else if (what === "replay") r = await api.POST("/api/v1/webhooks/endpoints/{id}/replay", { params: { path: { id: ep.id }, query: { since: new Date(Date.now() - 86400000).toISOString() } } });
    else if (what === "toggle") r = await api.PATCH("/api/v1/webhooks/endpoints/{id}", { ...path, body: { url: ep.url, event_types: ep.event_types, enabled: !ep.enabled } });
    else {
      if (!window.confirm(`Delete the endpoint ${ep.url}?`)) return;
      r = await api.DELETE("/api/v1/webhooks/endpoints/{id}", path);
    }
    if (r.error) return setActionProblem(asProblem(r.error, r.response.status));
    setActionProblem(null);
    if (what === "rotate") setSecret((r.data as Endpoint | undefined)?.secret ?? null);
    setNote(what === "test" ? "Test event sent." : what === "replay" ? "Events of the last 24 h queued again." : null);
    if (what === "delete" && selected?.id === ep.id) setSelected(null);
    setReload((n) => n + 1);
    setDReload((n) => n + 1);
  };

  const replayDelivery = async (d: Delivery) => {
    const r = await api.POST("/api/v1/webhooks/deliveries/{id}/replay", { params: { path: { id: d.id } } });
    setActionProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setDReload((n) => n + 1);
  };

  return (
    <div className="space-y-4">
      <PageHeader title="Webhooks" actions={<Button kind="primary" onClick={() => setOpen(true)}>New endpoint</Button>} />
      {secret && <SecretOnce label="Signing secret" secret={secret} />}
      <ErrorBox problem={actionProblem} />
      {note && <p role="status" className="text-sm">{note}</p>}
      <KeysetList<Endpoint>
        caption="Webhook endpoints"
        reloadKey={reload}
        fetchPage={(query) => api.GET("/api/v1/webhooks/endpoints", { params: { query } })}
        rowKey={(e) => e.id}
        empty="No endpoints yet: add one to receive your tenant's events."
        columns={[
          { header: "URL", cell: (e) => <button type="button" className="break-all text-left text-indigo-700 underline dark:text-indigo-300" onClick={() => setSelected(e)}>{e.url}</button> },
          { header: "Events", cell: (e) => e.event_types.join(", ") },
          { header: "Status", cell: (e) => (e.enabled ? <Badge tone="green">enabled</Badge> : <Badge tone="red">{e.disabled_reason ?? "disabled"}</Badge>) },
          {
            header: "Actions",
            cell: (e) => (
              <div className="flex flex-wrap gap-1">
                <Button onClick={() => void act("test", e)}>Send test</Button>
                <Button onClick={() => void act("replay", e)}>Replay 24 h</Button>
                <Button onClick={() => void act("rotate", e)}>Rotate secret</Button>
                <Button onClick={() => void act("toggle", e)}>{e.enabled ? "Disable" : "Enable"}</Button>
                <Button kind="danger" onClick={() => void act("delete", e)}>Delete</Button>
              </div>
            ),
          },
        ]}
      />
      {selected && (
        <Card title={`Deliveries to ${selected.url}`}>
          <KeysetList<Delivery>
            caption="Deliveries"
            reloadKey={`${selected.id}-${dReload}`}
            fetchPage={(query) => api.GET("/api/v1/webhooks/endpoints/{id}/deliveries", { params: { path: { id: selected.id }, query } })}
            rowKey={(d) => d.id}
            empty="No deliveries yet."
            columns={[
              { header: "Event", cell: (d) => <code>{d.event_type}</code> },
              { header: "Status", cell: (d) => <Badge tone={String(d.status) === "succeeded" || String(d.status) === "delivered" ? "green" : d.status === "failed" ? "red" : "amber"}>{d.status}</Badge> },
              { header: "Tries", cell: (d) => d.tries ?? d.attempts.length },
              {
                header: "Attempts",
                cell: (d) => (
                  <details>
                    <summary className="cursor-pointer text-sm">{d.attempts.length} attempt(s)</summary>
                    <ul className="text-xs">
                      {d.attempts.map((a, i) => (
                        <li key={i}>
                          {fmtDate(a.attempted_at)} · {a.status_code ?? "no answer"} · {a.latency_ms ?? 0} ms{a.error ? ` · ${a.error}` : ""}
                        </li>
                      ))}
                    </ul>
                  </details>
                ),
              },
              { header: "Last", cell: (d) => `${fmtDate(d.last_attempt_at)} ${d.last_status_code ?? ""} ${d.last_error ?? ""}` },
              { header: "Actions", cell: (d) => <Button onClick={() => void replayDelivery(d)}>Replay</Button> },
            ]}
          />
        </Card>
      )}
      <Modal title="New webhook endpoint" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="URL" name="url" type="url" value={url} onChange={setUrl} required errors={fieldErrors(problem)} />
          <Field label="Event types" name="event_types" value={types} onChange={setTypes} hint="Comma separated; wildcards like crm.*" errors={fieldErrors(problem)} />
          <Field label="Description" name="description" value={description} onChange={setDescription} errors={fieldErrors(problem)} />
          <Checkbox label="Enabled" checked={enabled} onChange={setEnabled} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create endpoint</Button>
        </form>
      </Modal>
    </div>
  );
}
