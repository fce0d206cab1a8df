// The typed API client: openapi-fetch over the types generated from the server's /openapi.json, with the
// session's bearer token added to every call and one silent refresh (single-flight) on a 401.
//   const { data, error } = await api.GET("/api/v1/tenants", { params: { query: { q } } });
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

type Tokens = { access: string; expiresAt: number };
let tokens: Tokens | null = null; // memory only: never localStorage/sessionStorage
let refreshing: Promise<boolean> | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let onSignedOut: () => void = () => {};

// Asks the server for browser sessions: the refresh token rides in an HttpOnly cookie, never in JSON.
export const REFRESH_HEADER = { "X-Refresh-Token": "cookie" } as const;

export function setSignedOutHandler(fn: () => void) {
  onSignedOut = fn;
}

export function accessToken(): string | null {
  return tokens?.access ?? null;
}

export function setTokens(answer: { access_token: string; expires_in: number } | null) {
  clearTimeout(refreshTimer);
  if (!answer) {
    tokens = null;
    return;
  }
  tokens = { access: answer.access_token, expiresAt: Date.now() + answer.expires_in * 1000 };
  // Refresh shortly before the access token runs out (at 80 % of its life, at least 5 s before).
  const ms = Math.max(1000, Math.min(answer.expires_in * 800, answer.expires_in * 1000 - 5000));
  refreshTimer = setTimeout(() => void refresh(), ms);
}

/** Trades the HttpOnly refresh cookie for a new access token. One call in flight at a time. */
export function refresh(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const call = () =>
          fetch("/api/v1/auth/refresh", {
            method: "POST",
            headers: { "Content-Type": "application/json", ...REFRESH_HEADER },
            body: "{}",
            credentials: "same-origin",
          });
        // Tabs share the cookie and each refresh spends it: one tab at a time (Web Locks), so a tab never
        // sends a cookie another tab has just spent (the server would take it for a stolen token's reuse).
        const r = navigator.locks ? await navigator.locks.request("cdx-refresh", call) : await call();
        if (!r.ok) {
          setTokens(null);
          return false;
        }
        setTokens(await r.json());
        return true;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

const AUTH_PATHS = ["/api/v1/auth/login", "/api/v1/auth/superadmin/login", "/api/v1/auth/refresh"];

/** fetch with the bearer token; on a 401 refreshes once and retries. */
export async function authFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const withToken = (req: Request) => {
    const t = accessToken();
    if (t && !req.headers.has("Authorization")) req.headers.set("Authorization", `Bearer ${t}`);
    return req;
  };
  const first = await fetch(withToken(input));
  const path = new URL(input.url).pathname;
  if (first.status !== 401 || AUTH_PATHS.includes(path)) return first;
  if (await refresh()) {
    retry.headers.delete("Authorization");
    return fetch(withToken(retry));
  }
  onSignedOut();
  return first;
}

export const api = createClient<paths>({ baseUrl: "", fetch: authFetch });

/** A problem+json body (or a network failure) as a Problem. */
export function asProblem(error: unknown, status?: number): Problem {
  if (error && typeof error === "object" && "title" in error) return error as Problem;
  if (error instanceof Error)
    return { type: "about:blank", title: "Network error", status: 0, code: "network", detail: error.message };
  return { type: "about:blank", title: "Error", status: status ?? 0, code: "unknown", detail: String(error ?? "Unknown error") };
}

/** Field errors of a problem, by field name. */
export function fieldErrors(p: Problem | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of p?.errors ?? []) if (e.field) out[e.field] = e.message ?? "invalid";
  return out;
}

/** The header a SUPERADMIN sends to act inside one tenant; nothing for a tenant's own ADMIN. */
export function tenantHeader(tenantId: string | undefined): { "X-Tenant-ID"?: string } {
  return tenantId ? { "X-Tenant-ID": tenantId } : {};
}
