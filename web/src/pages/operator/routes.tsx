import { lazy, Suspense } from "react";
import { Navigate, Route, Routes } from "react-router-dom";
import { Loading } from "../../components/ui";

const Overview = lazy(() => import("./Overview"));
const Tenants = lazy(() => import("./Tenants"));
const TenantDetail = lazy(() => import("./TenantDetail"));
const Plans = lazy(() => import("./Plans"));
const Services = lazy(() => import("./Services"));
const EventFeed = lazy(() => import("../shared/EventFeed"));

export default function OperatorRoutes() {
  return (
    <Suspense fallback={<Loading />}>
      <Routes>
        <Route path="/" element={<Overview />} />
        <Route path="/tenants" element={<Tenants />} />
        <Route path="/tenants/:id/*" element={<TenantDetail />} />
        <Route path="/plans" element={<Plans />} />
        <Route path="/services" element={<Services />} />
        <Route path="/events" element={<EventFeed operator />} />
        <Route path="*" element={<Navigate to="/" replace />} />
      </Routes>
    </Suspense>
  );
}
