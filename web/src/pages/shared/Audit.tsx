import { api, tenantHeader, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { fmtDate, PageHeader } from "../../components/ui";

type Entry = Schemas["AuditEntry"];
const ACTIONS = [
  "login.succeeded", "login.failed", "session.family_revoked", "password.reset_requested", "password.reset",
  "user.created", "user.role_changed", "user.disabled", "user.enabled", "user.password_changed", "user.deleted",
  "api_key.created", "api_key.revoked", "client.created", "client.updated", "client.secret_rotated", "client.deleted",
  "oauth.authorized", "oauth.token_revoked", "oauth.code_reused",
];
const brief = (o: unknown) => {
  if (!o || typeof o !== "object") return "—";
  const r = o as Record<string, unknown>;
  return String(r.email ?? r.username ?? r.name ?? r.type ?? r.id ?? JSON.stringify(o));
};

export default function Audit({ tenant }: { tenant?: string }) {
  const h = tenantHeader(tenant);
  return (
    <div>
      <PageHeader title="Audit log" />
      <KeysetList<Entry>
        caption="Audit log"
        filters={[{ name: "action", label: "Action", options: ACTIONS.map((a) => ({ value: a, label: a })) }]}
        fetchPage={(query) => api.GET("/api/v1/auth/audit", { params: { query, header: h } })}
        rowKey={(e) => e.id}
        empty="No audit entries yet."
        columns={[
          { header: "When", cell: (e) => fmtDate(e.created_at) },
          { header: "Action", cell: (e) => <code>{e.action}</code> },
          { header: "Actor", cell: (e) => brief(e.actor) },
          { header: "Target", cell: (e) => brief(e.target) },
          { header: "IP", cell: (e) => e.ip ?? "—" },
        ]}
      />
    </div>
  );
}
