// Services with live status: the list from GET /api/v1/services, then service.* events from the feed.
import { useEffect, useState } from "react";
import { api, asProblem, type Problem, type Schemas } from "../../api/client";
import { openEventStream } from "../../api/sse";

export type Service = Schemas["Service"];

export function useServices() {
  const [services, setServices] = useState<Service[] | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    let live = true;
    const load = async () => {
      const r = await api.GET("/api/v1/services", { params: { query: { limit: 200 } } });
      if (!live) return;
      if (r.error || !r.data) setProblem(asProblem(r.error, r.response.status));
      else {
        setProblem(null);
        setServices(r.data.data);
      }
    };
    void load();
    // Live: service.down / service.up carry one service; service.status (every few seconds) all of them.
    const apply = (x: Record<string, unknown>) =>
      setServices((old) =>
        old
          ? old.map((s) => {
              if (s.name !== x.name) return s;
              const status = (x.status as Service["status"] | undefined) ?? s.status;
              const latency = typeof x.latency_ms === "number" ? x.latency_ms : s.latency_ms;
              const checked = (x.checked_at as string | undefined) ?? new Date().toISOString();
              return {
                ...s,
                status,
                latency_ms: latency,
                error: status === "up" ? null : ((x.error as string | null | undefined) ?? s.error),
                last_check: checked,
                history: [{ checked_at: checked, latency_ms: latency, status }, ...s.history].slice(0, 120),
              };
            })
          : old,
      );
    const s = openEventStream({ type: "service.*" }, (m) => {
      const d = m.data as Record<string, unknown> | null;
      if (!d || typeof d !== "object") return;
      if (Array.isArray(d.services)) (d.services as Record<string, unknown>[]).forEach(apply);
      else if (typeof d.name === "string") apply(d);
    });
    const t = setInterval(load, 30000); // the feed keeps it live; this only catches up after a gap
    return () => {
      live = false;
      s.stop();
      clearInterval(t);
    };
  }, []);
  return { services, problem };
}
