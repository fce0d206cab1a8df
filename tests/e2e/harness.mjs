// Starts what the dashboard tests drive: the real cdx binary with demo data on a free 127.0.0.1 port (as
// tests/api/conftest.py does), and headless Debian chromium through playwright-core. When the binary does
// not serve the dashboard at / (before it embeds web/dist), `vite preview` serves web/dist and proxies
// the API to it. Missing chromium or binary is a failure, never a skip.
//   const h = await startHarness(); … await h.stop();
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CHROMIUM = process.env.CDX_CHROMIUM || "/usr/bin/chromium";
export const BINARY = path.resolve(ROOT, process.env.CDX_BINARY || "build/release/cdx");

const LISTEN_PORTS = [20000, 32700]; // below the ephemeral range, as conftest.py

async function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A base port with n free consecutive ports after it (a constellation takes the base and the next 7). */
export async function freePort(n = 1) {
  for (let i = 0; i < 500; i++) {
    const p = LISTEN_PORTS[0] + Math.floor(Math.random() * (LISTEN_PORTS[1] - LISTEN_PORTS[0] - n));
    let ok = true;
    for (let k = 0; k < n && ok; k++) ok = await portFree(p + k);
    if (ok) return p;
  }
  throw new Error("no free port");
}

export const MODULE_PORT = { gateway: 0, core: 1, auth: 3, crm: 4, cms: 5, billing: 6, analytics: 7 };

async function waitFor(url, ok, timeoutMs, proc, logPath) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${url}: process exited with ${proc.exitCode}\n${tail(logPath)}`);
    try {
      const r = await fetch(url);
      if (await ok(r)) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer in time\n${tail(logPath)}`);
}

function tail(p) {
  try {
    return readFileSync(p, "utf8").slice(-4000);
  } catch {
    return "";
  }
}

function stopProc(proc) {
  return new Promise((resolve) => {
    if (!proc || proc.exitCode !== null) return resolve();
    const t = setTimeout(() => proc.kill("SIGKILL"), 15000);
    proc.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

export async function startHarness({ topology = "monolith" } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CDX_CHROMIUM)`);
  if (!existsSync(BINARY)) throw new Error(`cdx binary not found at ${BINARY} (make build, or set CDX_BINARY)`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "cdx-e2e-"));
  const port = await freePort(topology === "constellation" ? 8 : 1);
  const apiUrl = `http://127.0.0.1:${port}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CDX_")));
  Object.assign(env, {
    CDX_HOST: "127.0.0.1",
    CDX_PORT: String(port),
    CDX_ACCESS_LOG: "false",
    CDX_THREADS: "2",
    CDX_LOG_LEVEL: "warn",
    CDX_DATA_DIR: path.join(tmp, "data"),
    CDX_KEK: randomBytes(32).toString("base64"),
    // The webhooks test's receiver listens on 127.0.0.1 (the SSRF guard refuses loopback otherwise).
    CDX_WEBHOOKS_ALLOW_LOOPBACK: "true",
  });
  const serverLog = path.join(tmp, "server.log");
  if (topology === "constellation") env.CDX_PORT_BASE = String(port);
  // PostgreSQL as the API suite runs it (CDX_TEST_BACKEND=postgres, scripts/pg-temp): a fresh database.
  if (process.env.CDX_TEST_BACKEND === "postgres") {
    const base = process.env.CDX_TEST_DATABASE_URL;
    if (!base) throw new Error("CDX_TEST_BACKEND=postgres needs CDX_TEST_DATABASE_URL (scripts/pg-temp start)");
    const name = `cdx_e2e_${randomBytes(6).toString("hex")}`;
    execFileSync("psql", [base, "-q", "-v", "ON_ERROR_STOP=1", "-c", `CREATE DATABASE ${name}`]);
    env.CDX_DATABASE_URL = base.replace(/\/[^/]*$/, `/${name}`);
  }
  const server = spawn(BINARY, [topology === "constellation" ? "up" : "serve", "--demo"], { env, stdio: ["ignore", openSync(serverLog, "a"), openSync(serverLog, "a")] });
  const procs = [server];
  let browser;
  try {
    // The gateway of a constellation is ready once every service behind it answers.
    const ready = async (r) => (topology === "constellation" ? r.status === 200 && (await r.json()).status === "ok" : r.status === 200 || r.status === 503);
    await waitFor(`${apiUrl}/health`, ready, 40000, server, serverLog);

    // The binary serves the dashboard itself once web/dist is embedded; until then, vite preview.
    let baseUrl = apiUrl;
    let mode = "binary";
    const root = await fetch(`${apiUrl}/`).catch(() => null);
    if (!root || !(root.headers.get("content-type") ?? "").includes("text/html")) {
      const webDir = path.join(ROOT, "web");
      if (!existsSync(path.join(webDir, "dist", "index.html"))) throw new Error("the binary does not serve / and web/dist is not built (cd web && npm run build)");
      const vport = await freePort();
      const viteLog = path.join(tmp, "vite.log");
      const vite = spawn(path.join(webDir, "node_modules", ".bin", "vite"), ["preview", "--host", "127.0.0.1", "--port", String(vport), "--strictPort"], {
        cwd: webDir,
        env: { ...process.env, CDX_DEV_SERVER: apiUrl },
        stdio: ["ignore", openSync(viteLog, "a"), openSync(viteLog, "a")],
      });
      procs.push(vite);
      baseUrl = `http://127.0.0.1:${vport}`;
      mode = "vite-preview";
      await waitFor(`${baseUrl}/`, (r) => r.ok, 20000, vite, viteLog);
    }

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    return {
      baseUrl,
      apiUrl,
      mode,
      topology,
      port,
      browser,
      tmp,
      serverLog,
      async stop() {
        await browser?.close().catch(() => {});
        for (const p of procs.reverse()) await stopProc(p);
        rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await browser?.close().catch(() => {});
    for (const p of procs.reverse()) await stopProc(p);
    throw e;
  }
}

/** A JSON call to the API (for setup and for making events the page must show). */
export async function apiCall(h, method, p, { token, body, headers = {} } = {}) {
  const r = await fetch(h.apiUrl + p, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: r.status, body: json };
}

export async function superadminToken(h) {
  const r = await apiCall(h, "POST", "/api/v1/auth/superadmin/login", { body: { username: "test", password: "test123" } });
  if (r.status !== 200) throw new Error(`superadmin login: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

export async function adminToken(h) {
  const r = await apiCall(h, "POST", "/api/v1/auth/login", { body: { email: "john.doe@demo.com", password: "demo123", tenant: "demo" } });
  if (r.status !== 200) throw new Error(`admin login: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

// A test run keeps its screenshots out of the tree; docs/dashboard.md's are refreshed on purpose with
// CDX_E2E_SCREENSHOTS=docs/dashboard tests/e2e/run.
export const SCREENSHOTS = path.resolve(ROOT, process.env.CDX_E2E_SCREENSHOTS || "build/e2e-screenshots");
mkdirSync(SCREENSHOTS, { recursive: true });
