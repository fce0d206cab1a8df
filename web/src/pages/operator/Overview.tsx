import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { api } from "../../api/client";
import { openEventStream } from "../../api/sse";
import { useLoad } from "../../components/list";
import { Badge, Card, ErrorBox, Loading, PageHeader, Stat } from "../../components/ui";
import { BarChart } from "../shared/charts";
import { useServices } from "./useServices";

/** One bar per hour for the last 24 hours (UTC): hours without events are zero, not missing. */
function last24h(rows: { hour: string; events: number }[]) {
  const byHour = new Map(rows.map((r) => [r.hour.slice(0, 13), r.events]));
  const now = Math.floor(Date.now() / 3600000) * 3600000;
  return Array.from({ length: 24 }, (_, i) => {
    const iso = new Date(now - (23 - i) * 3600000).toISOString();
    return { x: `${iso.slice(11, 16)} UTC`, y: byHour.get(iso.slice(0, 13)) ?? 0 };
  });
}

export default function Overview() {
  // The platform's numbers from GET /api/v1/overview (kept by the aggregates: no count over 10 000 rows).
  const ov = useLoad(() => api.GET("/api/v1/overview"), []);
  const newest = useLoad(() => api.GET("/api/v1/tenants", { params: { query: { limit: 5 } } }), []);
  const { services, problem: svcProblem } = useServices();
  const [perMinute, setPerMinute] = useState(0);
  const stamps = useRef<number[]>([]);

  // Events per minute, live: the feed's logged events over the last 60 s.
  useEffect(() => {
    const s = openEventStream({}, (m) => {
      // Only the event log's events (they carry an id); service.* status messages do not count.
      if (m.id === null || m.event.startsWith("service.") || m.event === "dropped") return;
      stamps.current.push(Date.now());
    });
    const t = setInterval(() => {
      const cut = Date.now() - 60000;
      stamps.current = stamps.current.filter((x) => x > cut);
      setPerMinute(stamps.current.length);
    }, 1000);
    return () => {
      s.stop();
      clearInterval(t);
    };
  }, []);

  const o = ov.data;
  const up = services?.filter((s) => s.status === "up").length;
  return (
    <div className="space-y-4">
      <PageHeader title="Platform overview" />
      <ErrorBox problem={ov.problem} />
      {ov.loading && !o ? (
        <Loading />
      ) : (
        o && (
          <div className="grid grid-cols-2 gap-3 lg:grid-cols-4" data-loaded="true">
            <Stat label="Tenants" value={o.tenants.total} />
            <Stat label="Active / suspended" value={`${o.tenants.active} / ${o.tenants.suspended}`} />
            <Stat label="API calls today" value={o.api_calls.today} />
            <Stat label="API calls (30 days)" value={o.api_calls.last_30_days} />
            <Stat label="Events per minute (live)" value={perMinute} />
            <Stat label="Events (24 h)" value={o.events_24h} />
            <Stat label="Services up" value={`${up ?? o.services.up} / ${services?.length ?? o.services.total}`} />
          </div>
        )
      )}
      {o && (
        <Card title="Events per hour, last 24 hours">
          <BarChart label="Events per hour" data={last24h(o.events_by_hour)} />
        </Card>
      )}
      <Card title="Services">
        <ErrorBox problem={svcProblem} />
        {!services ? (
          <Loading />
        ) : (
          <ul className="flex flex-wrap gap-2">
            {services.map((s) => (
              <li key={s.name}>
                <Badge tone={s.status === "up" ? "green" : s.status === "down" ? "red" : "amber"}>
                  {s.name}: {s.status}
                </Badge>
              </li>
            ))}
          </ul>
        )}
        <Link to="/services" className="mt-2 inline-block text-sm text-indigo-700 underline dark:text-indigo-300">
          Service details
        </Link>
      </Card>
      <Card title="Newest tenants">
        <ErrorBox problem={newest.problem} />
        <ul className="text-sm">
          {(newest.data?.data ?? []).map((t) => (
            <li key={t.id}>
              <Link className="text-indigo-700 underline dark:text-indigo-300" to={`/tenants/${t.id}`}>
                {t.name}
              </Link>{" "}
              <span className="text-slate-600 dark:text-slate-400">({t.slug})</span>
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}
