import { lazy, Suspense } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { useSession } from "./api/session";
import { Layout } from "./components/Layout";
import { Loading } from "./components/ui";
import { Login } from "./pages/Login";

// Route-level code splitting: each console loads only when its role signs in.
const Operator = lazy(() => import("./pages/operator/routes"));
const Admin = lazy(() => import("./pages/admin/routes"));

export function App() {
  const { me, loading } = useSession();
  const loc = useLocation();
  if (loading) return <Loading label="Restoring session…" />;
  if (!me) {
    return (
      <Routes>
        <Route path="/login" element={<Login />} />
        <Route path="*" element={<Navigate to="/login" replace state={{ from: loc.pathname + loc.search }} />} />
      </Routes>
    );
  }
  if (loc.pathname === "/login") {
    const from = (loc.state as { from?: string } | null)?.from;
    return <Navigate to={from && from !== "/login" ? from : "/"} replace />;
  }
  return (
    <Layout>
      <Suspense fallback={<Loading />}>{me.role === "SUPERADMIN" ? <Operator /> : <Admin />}</Suspense>
    </Layout>
  );
}
