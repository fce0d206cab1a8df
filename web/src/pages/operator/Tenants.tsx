import { useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../api/client";
import { KeysetList } from "../../components/list";
import { Badge, Button, ErrorBox, Field, fmtDate, Modal, PageHeader, SecretOnce, Select } from "../../components/ui";

type Tenant = Schemas["Tenant"];

export function usePlans() {
  const [plans, setPlans] = useState<Schemas["Plan"][]>([]);
  useEffect(() => {
    void api.GET("/api/v1/plans", { params: { query: { limit: 200 } } }).then((r) => setPlans(r.data?.data ?? []));
  }, []);
  return plans;
}

export default function Tenants() {
  const plans = usePlans();
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ name: "", slug: "", plan: "", admin_email: "", admin_password: "" });
  const [problem, setProblem] = useState<Problem | null>(null);
  const [created, setCreated] = useState<{ slug: string; key: string } | null>(null);
  const [rowProblem, setRowProblem] = useState<Problem | null>(null);
  const [deleting, setDeleting] = useState<Tenant | null>(null);
  const [confirm, setConfirm] = useState("");
  const set = (k: keyof typeof form) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const body: Schemas["TenantCreate"] = { name: form.name, slug: form.slug, admin_email: form.admin_email };
    if (form.plan) body.plan = form.plan;
    if (form.admin_password) body.admin_password = form.admin_password;
    const r = await api.POST("/api/v1/tenants", { body });
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setOpen(false);
    setCreated({ slug: r.data.slug, key: r.data.api_key });
    setForm({ name: "", slug: "", plan: "", admin_email: "", admin_password: "" });
    setReload((n) => n + 1);
  };

  const toggle = async (t: Tenant) => {
    const r =
      t.status === "active"
        ? await api.POST("/api/v1/tenants/{id}/suspend", { params: { path: { id: t.id } } })
        : await api.POST("/api/v1/tenants/{id}/resume", { params: { path: { id: t.id } } });
    setRowProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setReload((n) => n + 1);
  };

  const remove = async (e: FormEvent) => {
    e.preventDefault();
    if (!deleting || confirm !== deleting.slug) return;
    const r = await api.DELETE("/api/v1/tenants/{id}", { params: { path: { id: deleting.id } } });
    setRowProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setDeleting(null);
    setConfirm("");
    setReload((n) => n + 1);
  };

  return (
    <div>
      <PageHeader title="Tenants" actions={<Button kind="primary" onClick={() => setOpen(true)}>New tenant</Button>} />
      {created && <SecretOnce label={`Secret API key of ${created.slug}`} secret={created.key} />}
      <ErrorBox problem={rowProblem} />
      <div className="mt-3">
        <KeysetList<Tenant>
          caption="Tenants"
          reloadKey={reload}
          searchLabel="Search by name or slug"
          filters={[
            { name: "status", label: "Status", options: [{ value: "active", label: "Active" }, { value: "suspended", label: "Suspended" }] },
            { name: "plan", label: "Plan", options: plans.map((p) => ({ value: p.key, label: p.name })) },
            { name: "sort", label: "Sort", options: [{ value: "name", label: "Name A–Z" }, { value: "-created_at", label: "Newest" }, { value: "created_at", label: "Oldest" }] },
          ]}
          fetchPage={(query) => api.GET("/api/v1/tenants", { params: { query } })}
          rowKey={(t) => t.id}
          empty="No tenants match."
          columns={[
            {
              header: "Name",
              cell: (t) => (
                <Link className="font-medium text-indigo-700 underline dark:text-indigo-300" to={`/tenants/${t.id}`}>
                  {t.name}
                </Link>
              ),
            },
            { header: "Slug", cell: (t) => <code>{t.slug}</code> },
            { header: "Plan", cell: (t) => t.plan },
            { header: "Status", cell: (t) => <Badge tone={t.status === "active" ? "green" : "red"}>{t.status}</Badge> },
            { header: "Created", cell: (t) => fmtDate(t.created_at) },
            {
              header: "Actions",
              cell: (t) => (
                <div className="flex gap-2">
                  <Button onClick={() => void toggle(t)} aria-label={`${t.status === "active" ? "Suspend" : "Resume"} ${t.slug}`}>
                    {t.status === "active" ? "Suspend" : "Resume"}
                  </Button>
                  <Button kind="danger" onClick={() => setDeleting(t)} aria-label={`Delete ${t.slug}`}>
                    Delete
                  </Button>
                </div>
              ),
            },
          ]}
        />
      </div>
      <Modal title="New tenant" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={create} className="space-y-3">
          <Field label="Name" name="name" value={form.name} onChange={set("name")} required errors={fieldErrors(problem)} />
          <Field label="Slug" name="slug" value={form.slug} onChange={set("slug")} required hint="Lower-case letters, digits and dashes" errors={fieldErrors(problem)} />
          <Select label="Plan" name="plan" value={form.plan} onChange={set("plan")} options={[{ value: "", label: "Default (free)" }, ...plans.map((p) => ({ value: p.key, label: p.name }))]} errors={fieldErrors(problem)} />
          <Field label="First admin's email" name="admin_email" type="email" value={form.admin_email} onChange={set("admin_email")} required errors={fieldErrors(problem)} />
          <Field label="First admin's password" name="admin_password" type="password" value={form.admin_password} onChange={set("admin_password")} autoComplete="new-password" errors={fieldErrors(problem)} />
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Create tenant</Button>
        </form>
      </Modal>
      <Modal title={`Delete ${deleting?.name ?? ""}`} open={!!deleting} onClose={() => setDeleting(null)}>
        <form onSubmit={remove} className="space-y-3">
          <p className="text-sm">This deletes the tenant and purges its data in every module. It cannot be undone.</p>
          <Field label={`Type the slug "${deleting?.slug ?? ""}" to confirm`} name="confirm" value={confirm} onChange={setConfirm} />
          <Button kind="danger" type="submit" disabled={confirm !== deleting?.slug}>
            Delete tenant
          </Button>
        </form>
      </Modal>
    </div>
  );
}
