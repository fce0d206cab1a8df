import { api, type Schemas } from "../../api/client";
import { useLoad } from "../../components/list";
import { Card, ErrorBox, fmtDate, fmtMoney, Loading, Stat } from "../../components/ui";
import { BarChart } from "./charts";

/** One bar per day from `from` to `to`: days without calls are zero, not missing. */
function everyDay(u: Schemas["TenantUsage"]) {
  const calls = new Map((u.days ?? []).map((d) => [d.day ?? "", d.calls ?? 0]));
  const out: { x: string; y: number }[] = [];
  const end = new Date(`${u.to}T00:00:00Z`).getTime();
  for (let t = new Date(`${u.from}T00:00:00Z`).getTime(); t <= end && out.length < 400; t += 86400000) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push({ x: day, y: calls.get(day) ?? 0 });
  }
  return out.length ? out : [...calls].map(([x, y]) => ({ x, y }));
}

/** A tenant's aggregates (GET /tenants/{id}/overview) and its 30-day usage chart. */
export function TenantStats({ tenantId }: { tenantId: string }) {
  const ov = useLoad(() => api.GET("/api/v1/tenants/{id}/overview", { params: { path: { id: tenantId } } }), [tenantId]);
  // The operator reads any tenant's usage; a tenant's ADMIN its own.
  const usage = useLoad(() => api.GET("/api/v1/tenants/{id}/usage", { params: { path: { id: tenantId } } }), [tenantId]);
  const o: Schemas["TenantOverview"] | null = ov.data;
  return (
    <div className="space-y-4">
      <ErrorBox problem={ov.problem} />
      {ov.loading && !o && <Loading />}
      {o && (
        <div className="grid grid-cols-2 gap-3 lg:grid-cols-4" data-loaded="true">
          <Stat label="Users" value={o.users} />
          <Stat label="API keys" value={o.api_keys} />
          <Stat label="Contacts" value={o.contacts} />
          <Stat label="Companies" value={o.companies} />
          <Stat label="Open deals" value={`${o.deals.open} (${fmtMoney(o.deals.open_value)})`} />
          <Stat label="Published entries" value={o.entries.published} />
          <Stat label="Media" value={o.media} />
          <Stat label="Events (24 h)" value={o.events_24h} />
          <Stat label="API calls today" value={o.api_calls.today} />
          <Stat label="API calls (30 days)" value={o.api_calls.last_30_days} />
          <Stat label="MRR" value={fmtMoney(o.billing.mrr)} />
          <Stat label="Open invoices" value={o.billing.open_invoices} />
        </div>
      )}
      {o && <p className="text-xs text-slate-600 dark:text-slate-400">Updated {fmtDate(o.updated_at)}</p>}
      <Card title="API calls, last 30 days">
        <ErrorBox problem={usage.problem} />
        {usage.data && <BarChart label="API calls per day" data={everyDay(usage.data)} />}
        {usage.data && <p className="text-sm">Total: {usage.data.total}</p>}
      </Card>
    </div>
  );
}
