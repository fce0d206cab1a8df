// A webhook receiver for the API tests (tests/api/test_webhooks.py): verifies every request with the reference
// standardwebhooks library and records it. Usage: node receiver.mjs <port> [--tls <key.pem> <cert.pem>]; prints
// "ready" once listening (with --tls, over HTTPS only: the control paths too).
//   POST /_config {"path": "/a", "mode": "ok"|"500"|"410"|"hang"|"reset"|"429"|"drop-reused"|"close-after"|"early-hints",
//                  "times": n, "retry_after": s, "secrets": ["whsec_…"]}: how /a answers (the first `times`
//                  requests, then ok; omitted: always). drop-reused: closes, unanswered, a connection that
//                  served a request before (else ok); close-after: ok, then closes the connection 50 ms later;
//                  early-hints: a 103 interim answer, then ok 100 ms later.
//   GET /_requests?path=/a: what /a received: [{headers, body, at, conn, verified: {secret: true|error}}]
//                  (conn: the connection's number, counted from 1 as they come)
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
let connections = 0;
const handler = (req, res) => {
  const socket = req.socket;
  socket.cdxConn ??= ++connections;
  const servedBefore = socket.cdxServed ?? 0;
  socket.cdxServed = servedBefore + 1;
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
    e.requests.push({ headers: req.headers, body, at: Date.now() / 1000, conn: socket.cdxConn, verified });
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
      case "reset": socket.resetAndDestroy(); break;
      case "drop-reused":
        if (servedBefore > 0) socket.destroy();
        else res.writeHead(200, { "content-type": "text/plain" }).end("ok");
        break;
      case "early-hints": // an interim 103 first, the final answer 100 ms later
        res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
        setTimeout(() => res.writeHead(200, { "content-type": "text/plain" }).end("ok after hints"), 100);
        break;
      case "close-after":
        res.on("finish", () => setTimeout(() => socket.end(), 50));
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
        break;
      default: res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    }
  });
};
const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
server.keepAliveTimeout = 30000; // idle connections stay: the sender's reuse of them is under test
server.listen(port, "127.0.0.1", () => console.log("ready"));
