import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { api } from "../../api/client";
import { openEventStream } from "../../api/sse";
import { useLoad } from "../../components/list";
import { Badge, Card, ErrorBox, Loading, PageHeader, Stat } from "../../components/ui";
import { useServices } from "./useServices";

export default function Overview() {
  // A page of tenants (keyset): "50+" rather than a count(*) over 10 000 rows.
  const tenants = useLoad(() => api.GET("/api/v1/tenants", { params: { query: { limit: 200 } } }), []);
  const { services, problem: svcProblem } = useServices();
  const [perMinute, setPerMinute] = useState(0);
  const stamps = useRef<number[]>([]);
  const [callsToday, setCallsToday] = useState<number | null>(null);

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

  // API calls today: the sum over the first page of tenants' overviews (bounded: at most 20 requests).
  useEffect(() => {
    const list = tenants.data?.data;
    if (!list) return;
    let live = true;
    Promise.all(list.slice(0, 20).map((t) => api.GET("/api/v1/tenants/{id}/overview", { params: { path: { id: t.id } } }))).then((rs) => {
      if (live) setCallsToday(rs.reduce((a, r) => a + (r.data?.api_calls.today ?? 0), 0));
    });
    return () => {
      live = false;
    };
  }, [tenants.data]);

  const list = tenants.data?.data ?? [];
  const active = list.filter((t) => t.status === "active").length;
  const more = tenants.data?.next_cursor ? "+" : "";
  return (
    <div className="space-y-4">
      <PageHeader title="Platform overview" />
      <ErrorBox problem={tenants.problem} />
      {tenants.loading && !tenants.data ? (
        <Loading />
      ) : (
        <div className="grid grid-cols-2 gap-3 lg:grid-cols-4" data-loaded="true">
          <Stat label="Tenants" value={`${list.length}${more}`} />
          <Stat label="Active tenants" value={`${active}${more}`} />
          <Stat label={list.length > 20 ? "API calls today (20 newest tenants)" : "API calls today"} value={callsToday ?? "…"} />
          <Stat label="Events per minute" value={perMinute} />
        </div>
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
        <ul className="text-sm">
          {list.slice(0, 5).map((t) => (
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
