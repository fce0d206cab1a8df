import { lazy, Suspense, useState } from "react";
import { NavLink, Route, Routes, useParams } from "react-router-dom";
import { api, asProblem, type Problem } from "../../api/client";
import { useLoad } from "../../components/list";
import { Badge, Button, cx, ErrorBox, Loading, PageHeader, Select } from "../../components/ui";
import { TenantStats } from "../shared/TenantStats";
import { usePlans } from "./Tenants";

const Users = lazy(() => import("../shared/Users"));
const ApiKeys = lazy(() => import("../shared/ApiKeys"));
const OAuthClients = lazy(() => import("../shared/OAuthClients"));
const Audit = lazy(() => import("../shared/Audit"));
const EventFeed = lazy(() => import("../shared/EventFeed"));

export default function TenantDetail() {
  const { id = "" } = useParams();
  const t = useLoad(() => api.GET("/api/v1/tenants/{id}", { params: { path: { id } } }), [id]);
  const plans = usePlans();
  const [problem, setProblem] = useState<Problem | null>(null);
  if (t.loading && !t.data) return <Loading />;
  if (!t.data) return <ErrorBox problem={t.problem} />;
  const tenant = t.data;
  const base = `/tenants/${id}`;
  const tabs = [
    ["", "Overview"],
    ["users", "Users"],
    ["api-keys", "API keys"],
    ["oauth-clients", "OAuth clients"],
    ["audit", "Audit log"],
    ["events", "Events"],
  ];
  const setPlan = async (plan: string) => {
    const r = await api.PATCH("/api/v1/tenants/{id}", { params: { path: { id } }, body: { plan } });
    if (r.error || !r.data) setProblem(asProblem(r.error, r.response.status));
    else {
      setProblem(null);
      t.setData(r.data);
    }
  };
  const toggle = async () => {
    const r = tenant.status === "active" ? await api.POST("/api/v1/tenants/{id}/suspend", { params: { path: { id } } }) : await api.POST("/api/v1/tenants/{id}/resume", { params: { path: { id } } });
    if (r.error || !r.data) setProblem(asProblem(r.error, r.response.status));
    else t.setData(r.data);
  };
  return (
    <div>
      <PageHeader
        title={tenant.name}
        actions={
          <>
            <div className="w-44">
              <Select label="Plan" value={tenant.plan} onChange={(v) => void setPlan(v)} options={plans.length ? plans.map((p) => ({ value: p.key, label: p.name })) : [{ value: tenant.plan, label: tenant.plan }]} />
            </div>
            <Button className="self-end" onClick={() => void toggle()}>
              {tenant.status === "active" ? "Suspend" : "Resume"}
            </Button>
          </>
        }
      >
        <p className="text-sm text-slate-600 dark:text-slate-400">
          <code>{tenant.slug}</code> · <Badge tone={tenant.status === "active" ? "green" : "red"}>{tenant.status}</Badge> · id <code>{tenant.id}</code>
        </p>
      </PageHeader>
      <ErrorBox problem={problem} />
      <nav aria-label="Tenant sections" className="mb-4 flex flex-wrap gap-1 border-b border-slate-200 dark:border-slate-700">
        {tabs.map(([path, label]) => (
          <NavLink
            key={path}
            end
            to={path ? `${base}/${path}` : base}
            className={({ isActive }) => cx("rounded-t-md px-3 py-1.5 text-sm", isActive ? "border-b-2 border-indigo-600 font-semibold" : "text-slate-700 hover:bg-slate-100 dark:text-slate-300 dark:hover:bg-slate-800")}
          >
            {label}
          </NavLink>
        ))}
      </nav>
      <Suspense fallback={<Loading />}>
        <Routes>
          <Route index element={<TenantStats tenantId={tenant.id} />} />
          <Route path="users" element={<Users tenant={tenant.id} />} />
          <Route path="api-keys" element={<ApiKeys tenant={tenant.id} />} />
          <Route path="oauth-clients" element={<OAuthClients tenant={tenant.id} />} />
          <Route path="audit" element={<Audit tenant={tenant.id} />} />
          <Route path="events" element={<EventFeed operator tenant={tenant.id} title="Tenant events" />} />
        </Routes>
      </Suspense>
    </div>
  );
}
