import { useState, type FormEvent } from "react";
import { fieldErrors, type Problem } from "../api/client";
import { useSession } from "../api/session";
import { Button, ErrorBox, Field } from "../components/ui";

export function Login() {
  const { login } = useSession();
  const [kind, setKind] = useState<"admin" | "superadmin">("admin");
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [tenant, setTenant] = useState("");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const p = kind === "superadmin" ? await login({ kind, username, password }) : await login({ kind, email, password, tenant });
    setBusy(false);
    setProblem(p);
  };
  const fe = fieldErrors(problem);

  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <div className="w-full max-w-sm rounded-lg border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-700 dark:bg-slate-900">
        <h1 className="mb-1 text-xl font-bold">CDXPharaoh</h1>
        <p className="mb-4 text-sm text-slate-600 dark:text-slate-400">Sign in to the CDX console</p>
        <fieldset className="mb-4">
          <legend className="mb-1 text-sm font-medium">I am</legend>
          <div className="flex gap-4 text-sm">
            <label className="flex items-center gap-1">
              <input type="radio" name="kind" checked={kind === "admin"} onChange={() => setKind("admin")} /> a tenant admin
            </label>
            <label className="flex items-center gap-1">
              <input type="radio" name="kind" checked={kind === "superadmin"} onChange={() => setKind("superadmin")} /> the operator
            </label>
          </div>
        </fieldset>
        <form onSubmit={submit} className="space-y-3" aria-label="Sign in">
          {kind === "superadmin" ? (
            <Field label="Username" name="username" value={username} onChange={setUsername} autoComplete="username" required errors={fe} />
          ) : (
            <>
              <Field label="Tenant" name="tenant" value={tenant} onChange={setTenant} hint="The tenant's slug, e.g. demo" required errors={fe} />
              <Field label="Email" name="email" type="email" value={email} onChange={setEmail} autoComplete="username" required errors={fe} />
            </>
          )}
          <Field label="Password" name="password" type="password" value={password} onChange={setPassword} autoComplete="current-password" required errors={fe} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit" className="w-full" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </Button>
        </form>
      </div>
    </main>
  );
}
