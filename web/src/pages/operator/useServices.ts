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
    // Live: a service.* event updates its row at once; a slow poll keeps latency history current.
    const s = openEventStream({ type: "service.*" }, (m) => {
      const d = m.data as { data?: Record<string, unknown>; type?: string } & Record<string, unknown>;
      const body = (d && typeof d === "object" && d.data && typeof d.data === "object" ? d.data : d) as Record<string, unknown>;
      const name = (body?.name ?? body?.service) as string | undefined;
      const status = (body?.status ?? (m.event === "service.down" ? "down" : m.event === "service.up" ? "up" : undefined)) as Service["status"] | undefined;
      if (!name) return void load();
      setServices((old) =>
        old
          ? old.map((s) =>
              s.name === name
                ? { ...s, status: status ?? s.status, error: (body.error as string | null | undefined) ?? (status === "up" ? null : s.error), latency_ms: (body.latency_ms as number | undefined) ?? s.latency_ms }
                : s,
            )
          : old,
      );
    });
    const t = setInterval(load, 10000);
    return () => {
      live = false;
      s.stop();
      clearInterval(t);
    };
  }, []);
  return { services, problem };
}
