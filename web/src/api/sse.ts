// Reads the live feed (GET /api/v1/events/stream, Server-Sent Events) with fetch and the bearer token in a
// header (never in the URL); remembers the last id and resumes with Last-Event-ID after a drop.
//   const stop = openEventStream({ type: "tenant.*" }, (ev) => console.log(ev));
import { authFetch } from "./client";

export type FeedMessage = { id: string | null; event: string; data: unknown };

export type StreamOptions = {
  tenantId?: string; // filter (query tenant_id=)
  type?: string; // filter (query type=)
  actAs?: string; // X-Tenant-ID
  lastEventId?: string | null;
  onOpen?: () => void;
  onError?: (err: string) => void;
};

export function openEventStream(opts: StreamOptions, onMessage: (m: FeedMessage) => void): { stop: () => void; lastId: () => string | null } {
  let stopped = false;
  let lastId: string | null = opts.lastEventId ?? null;
  let controller: AbortController | null = null;
  let backoff = 500;

  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      const q = new URLSearchParams();
      if (opts.tenantId) q.set("tenant_id", opts.tenantId);
      if (opts.type) q.set("type", opts.type);
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      if (opts.actAs) headers["X-Tenant-ID"] = opts.actAs;
      try {
        const res = await authFetch(
          new Request(`/api/v1/events/stream${q.size ? "?" + q.toString() : ""}`, { headers, signal: controller.signal }),
        );
        if (!res.ok || !res.body) throw new Error(`live feed answered ${res.status}`);
        opts.onOpen?.();
        backoff = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        let ev = { id: null as string | null, event: "message", data: [] as string[] };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let nl: number;
          while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
            if (line === "") {
              if (ev.data.length) {
                if (ev.id !== null) lastId = ev.id;
                const raw = ev.data.join("\n");
                let data: unknown = raw;
                try {
                  data = JSON.parse(raw);
                } catch {
                  /* plain text data */
                }
                onMessage({ id: ev.id, event: ev.event, data });
              }
              ev = { id: null, event: "message", data: [] };
              continue;
            }
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? "" : line.slice(colon + 1);
            if (val.startsWith(" ")) val = val.slice(1);
            if (field === "data") ev.data.push(val);
            else if (field === "event") ev.event = val;
            else if (field === "id") ev.id = val;
          }
        }
      } catch (e) {
        if (stopped) return;
        opts.onError?.(e instanceof Error ? e.message : String(e));
      }
      if (stopped) return;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  };
  void run();
  return {
    stop: () => {
      stopped = true;
      controller?.abort();
    },
    lastId: () => lastId,
  };
}
