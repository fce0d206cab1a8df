// The live event feed: the last page of the event log, then the SSE stream; pause keeps reading into a
// buffer so resume loses nothing; filters by type and (operator) tenant live in the URL.
import { useEffect, useRef, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { api, asProblem, tenantHeader, type Problem, type Schemas } from "../../api/client";
import { openEventStream } from "../../api/sse";
import { Badge, Button, ErrorBox, fmtDate, inputCls, PageHeader } from "../../components/ui";

type Ev = Schemas["Event"];
const MAX = 500;

export default function EventFeed({ tenant, operator, title = "Events" }: { tenant?: string; operator?: boolean; title?: string }) {
  const [params, setParams] = useSearchParams();
  const type = params.get("type") ?? "";
  const tenantFilter = tenant ?? (params.get("tenant_id") || undefined);
  const [events, setEvents] = useState<Ev[]>([]);
  const [paused, setPaused] = useState(false);
  const [buffered, setBuffered] = useState(0);
  const [status, setStatus] = useState<"connecting" | "live" | "reconnecting">("connecting");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [typeInput, setTypeInput] = useState(type);
  const [tenantInput, setTenantInput] = useState(params.get("tenant_id") ?? "");
  const pausedRef = useRef(false);
  const buffer = useRef<Ev[]>([]);

  useEffect(() => {
    let stop: (() => void) | null = null;
    let live = true;
    setEvents([]);
    setLoaded(false);
    buffer.current = [];
    (async () => {
      const query: { limit: number; type?: string; tenant_id?: string } = { limit: 50 };
      if (type) query.type = type;
      if (tenantFilter && operator) query.tenant_id = tenantFilter;
      const r = await api.GET("/api/v1/events", { params: { query, header: operator ? {} : tenantHeader(tenant) } });
      if (!live) return;
      if (r.error || !r.data) setProblem(asProblem(r.error, r.response.status));
      else setEvents(r.data.data);
      setLoaded(true);
      const last = r.data?.data[0]?.seq;
      const s = openEventStream(
        {
          type: type || undefined,
          tenantId: operator ? tenantFilter : undefined,
          actAs: operator ? undefined : tenant,
          lastEventId: last !== undefined ? String(last) : null,
          onOpen: () => setStatus("live"),
          onError: () => setStatus("reconnecting"),
        },
        (m) => {
          const d = m.data as Ev;
          if (!d || typeof d !== "object" || !("type" in d) || !("seq" in d)) return;
          if (pausedRef.current) {
            buffer.current.push(d);
            setBuffered(buffer.current.length);
          } else setEvents((old) => [d, ...old.filter((e) => e.seq !== d.seq)].slice(0, MAX));
        },
      );
      stop = s.stop;
    })();
    return () => {
      live = false;
      stop?.();
    };
  }, [type, tenantFilter, operator, tenant]);

  const togglePause = () => {
    if (pausedRef.current) {
      const got = buffer.current.reverse();
      buffer.current = [];
      setBuffered(0);
      setEvents((old) => [...got, ...old].slice(0, MAX));
    }
    pausedRef.current = !pausedRef.current;
    setPaused(pausedRef.current);
  };

  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const n = new URLSearchParams(params);
    typeInput ? n.set("type", typeInput) : n.delete("type");
    if (operator && !tenant) tenantInput ? n.set("tenant_id", tenantInput) : n.delete("tenant_id");
    setParams(n, { replace: true });
  };

  return (
    <div>
      <PageHeader
        title={title}
        actions={
          <>
            <span role="status" aria-live="polite" className="self-center text-sm">
              <Badge tone={status === "live" ? "green" : "amber"}>{status}</Badge>
              {paused && buffered > 0 && <span className="ml-2">{buffered} new while paused</span>}
            </span>
            <Button onClick={togglePause} aria-pressed={paused}>
              {paused ? "Resume" : "Pause"}
            </Button>
          </>
        }
      />
      <form onSubmit={apply} className="mb-3 flex flex-wrap items-end gap-3" role="search">
        <div>
          <label htmlFor="ev-type" className="block text-sm font-medium">
            Type filter
          </label>
          <input id="ev-type" className={inputCls} placeholder="crm.* or tenant.created" value={typeInput} onChange={(e) => setTypeInput(e.target.value)} />
        </div>
        {operator && !tenant && (
          <div>
            <label htmlFor="ev-tenant" className="block text-sm font-medium">
              Tenant id
            </label>
            <input id="ev-tenant" className={inputCls} value={tenantInput} onChange={(e) => setTenantInput(e.target.value)} />
          </div>
        )}
        <Button type="submit">Apply filters</Button>
      </form>
      <ErrorBox problem={problem} />
      <ol className="divide-y divide-slate-200 rounded-lg border border-slate-200 bg-white dark:divide-slate-800 dark:border-slate-700 dark:bg-slate-900" data-loaded={loaded ? "true" : undefined} aria-label="Events">
        {loaded && events.length === 0 && <li className="p-4 text-center text-sm text-slate-600 dark:text-slate-400">No events yet.</li>}
        {events.map((e) => (
          <li key={e.seq} className="flex flex-wrap items-baseline gap-x-3 gap-y-1 px-3 py-2 text-sm" data-event-type={e.type}>
            <span className="w-16 text-xs text-slate-600 dark:text-slate-400">#{e.seq}</span>
            <code className="font-semibold">{e.type}</code>
            <span className="text-xs text-slate-600 dark:text-slate-400">{fmtDate(e.created_at)}</span>
            {operator && <span className="text-xs text-slate-600 dark:text-slate-400">tenant {e.tenant_id.slice(0, 8)}</span>}
            <span className="min-w-0 flex-1 truncate text-xs text-slate-700 dark:text-slate-300">{e.subject ?? JSON.stringify(e.data).slice(0, 120)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}
