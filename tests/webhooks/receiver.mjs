// A webhook receiver for the API tests (tests/api/test_webhooks.py): verifies every request with the reference
// standardwebhooks library and records it. Usage: node receiver.mjs <port> [--tls <key.pem> <cert.pem>]; prints
// "ready" once listening (with --tls, over HTTPS only: the control paths too).
//   POST /_config {"path": "/a", "mode": "ok"|"500"|"410"|"hang"|"reset"|"429", "times": n, "retry_after": s,
//                  "secrets": ["whsec_…"]}: how /a answers (the first `times` requests, then ok; omitted: always)
//   GET /_requests?path=/a: what /a received: [{headers, body, at, verified: {secret: true|error}}]
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Webhook } from "standardwebhooks";

const port = Number(process.argv[2]);
const paths = new Map(); // path → {mode, times, retry_after, secrets, requests: []}
const entry = (path) => {
  if (!paths.has(path)) paths.set(path, { mode: "ok", times: null, retry_after: 1, secrets: [], requests: [] });
  return paths.get(path);
};

const tls = process.argv[3] === "--tls" ? { key: readFileSync(process.argv[4]), cert: readFileSync(process.argv[5]) } : null;
const handler = (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/_config") {
      const c = JSON.parse(body);
      const e = entry(c.path);
      Object.assign(e, { mode: c.mode ?? "ok", times: c.times ?? null, retry_after: c.retry_after ?? 1,
                         secrets: c.secrets ?? e.secrets });
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/_requests") {
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify(entry(url.searchParams.get("path")).requests));
      return;
    }
    const e = entry(url.pathname);
    const verified = {};
    for (const secret of e.secrets) {
      try {
        new Webhook(secret).verify(body, req.headers);
        verified[secret] = true;
      } catch (err) {
        verified[secret] = String(err && err.message || err);
      }
    }
    e.requests.push({ headers: req.headers, body, at: Date.now() / 1000, verified });
    let mode = e.mode;
    if (e.times !== null) {
      if (e.times > 0) e.times -= 1;
      else mode = "ok";
    }
    switch (mode) {
      case "500": res.writeHead(500, { "content-type": "text/plain" }).end("receiver error"); break;
      case "410": res.writeHead(410).end("gone"); break;
      case "429": res.writeHead(429, { "retry-after": String(e.retry_after) }).end("slow down"); break;
      case "hang": break; // never answers
      case "reset": req.socket.resetAndDestroy(); break;
      default: res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    }
  });
};
const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
server.keepAliveTimeout = 1000;
server.listen(port, "127.0.0.1", () => console.log("ready"));
