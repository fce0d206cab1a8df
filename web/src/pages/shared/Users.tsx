import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, tenantHeader, type Problem, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { Badge, Button, ErrorBox, Field, fmtDate, Modal, PageHeader, SecretOnce, Select } from "../../components/ui";

type User = Schemas["User"];

export default function Users({ tenant }: { tenant?: string }) {
  const h = tenantHeader(tenant);
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState<"ADMIN" | "CLIENT">("CLIENT");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [rowProblem, setRowProblem] = useState<Problem | null>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body: Schemas["UserCreate"] = { email, role };
    if (name) body.name = name;
    if (password) body.password = password;
    const r = await api.POST("/api/v1/auth/users", { body, params: { header: h } });
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setCreated(r.data.initial_password ? `${r.data.email}: ${r.data.initial_password}` : null);
    setEmail("");
    setName("");
    setPassword("");
    setReload((n) => n + 1);
  };

  const patch = async (u: User, body: Schemas["UserUpdate"]) => {
    const r = await api.PATCH("/api/v1/auth/users/{id}", { params: { path: { id: u.id }, header: h }, body });
    setRowProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setReload((n) => n + 1);
  };

  return (
    <div>
      <PageHeader title="Users" actions={<Button kind="primary" onClick={() => setOpen(true)}>New user</Button>} />
      {created && <SecretOnce label="Initial password" secret={created} />}
      <ErrorBox problem={rowProblem} />
      <KeysetList<User>
        caption="Users"
        reloadKey={reload}
        searchLabel="Search users"
        filters={[
          { name: "role", label: "Role", options: [{ value: "ADMIN", label: "Admin" }, { value: "CLIENT", label: "Client" }] },
          { name: "status", label: "Status", options: [{ value: "active", label: "Active" }, { value: "disabled", label: "Disabled" }] },
        ]}
        fetchPage={(query) => api.GET("/api/v1/auth/users", { params: { query, header: h } })}
        rowKey={(u) => u.id}
        empty="No users yet."
        columns={[
          { header: "Email", cell: (u) => u.email },
          { header: "Name", cell: (u) => u.name ?? "—" },
          {
            header: "Role",
            cell: (u) => (
              <Select hideLabel label={`Role of ${u.email}`} value={u.role} onChange={(v) => void patch(u, { role: v as "ADMIN" | "CLIENT" })} options={[{ value: "ADMIN", label: "ADMIN" }, { value: "CLIENT", label: "CLIENT" }]} />
            ),
          },
          { header: "Status", cell: (u) => <Badge tone={u.status === "active" ? "green" : "red"}>{u.status}</Badge> },
          { header: "Last sign-in", cell: (u) => fmtDate(u.last_login_at) },
          {
            header: "Actions",
            cell: (u) => (
              <Button onClick={() => void patch(u, { status: u.status === "active" ? "disabled" : "active" })}>{u.status === "active" ? "Disable" : "Enable"}</Button>
            ),
          },
        ]}
      />
      <Modal title="New user" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="Email" name="email" type="email" value={email} onChange={setEmail} required errors={fieldErrors(problem)} />
          <Field label="Name" name="name" value={name} onChange={setName} errors={fieldErrors(problem)} />
          <Select label="Role" name="role" value={role} onChange={(v) => setRole(v as "ADMIN" | "CLIENT")} options={[{ value: "CLIENT", label: "CLIENT" }, { value: "ADMIN", label: "ADMIN" }]} />
          <Field label="Password" name="password" type="password" value={password} onChange={setPassword} hint="Leave empty to generate one" errors={fieldErrors(problem)} autoComplete="new-password" />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create user</Button>
        </form>
      </Modal>
    </div>
  );
}
