import { lazy, Suspense } from "react";
import { Navigate, Route, Routes } from "react-router-dom";
import { Card, Loading, PageHeader } from "../../components/ui";

const Overview = lazy(() => import("./Overview"));
const Users = lazy(() => import("../shared/Users"));
const ApiKeys = lazy(() => import("../shared/ApiKeys"));
const OAuthClients = lazy(() => import("../shared/OAuthClients"));
const Audit = lazy(() => import("../shared/Audit"));
const EventFeed = lazy(() => import("../shared/EventFeed"));
const Webhooks = lazy(() => import("./Webhooks"));
const Contacts = lazy(() => import("./crm/Contacts"));
const ContactDetail = lazy(() => import("./crm/ContactDetail"));
const Companies = lazy(() => import("./crm/Companies"));
const DealBoard = lazy(() => import("./crm/DealBoard"));
const ContentTypes = lazy(() => import("./cms/ContentTypes"));
const Entries = lazy(() => import("./cms/Entries"));
const EntryEditor = lazy(() => import("./cms/EntryEditor"));
const Media = lazy(() => import("./cms/Media"));
const Locales = lazy(() => import("./cms/Locales"));

function Soon({ title }: { title: string }) {
  return (
    <div>
      <PageHeader title={title} />
      <Card>
        <p className="text-sm" data-loaded="true">
          {title} arrives with its own module's dashboard work. The navigation slot is ready.
        </p>
      </Card>
    </div>
  );
}

export default function AdminRoutes() {
  return (
    <Suspense fallback={<Loading />}>
      <Routes>
        <Route path="/" element={<Overview />} />
        <Route path="/users" element={<Users />} />
        <Route path="/api-keys" element={<ApiKeys />} />
        <Route path="/oauth-clients" element={<OAuthClients />} />
        <Route path="/audit" element={<Audit />} />
        <Route path="/webhooks" element={<Webhooks />} />
        <Route path="/crm/contacts" element={<Contacts />} />
        <Route path="/crm/contacts/:id" element={<ContactDetail />} />
        <Route path="/crm/companies" element={<Companies />} />
        <Route path="/crm/deals" element={<DealBoard />} />
        <Route path="/cms" element={<ContentTypes />} />
        <Route path="/cms/media" element={<Media />} />
        <Route path="/cms/locales" element={<Locales />} />
        <Route path="/cms/types/:key" element={<Entries />} />
        <Route path="/cms/types/:key/entries/:id" element={<EntryEditor />} />
        <Route path="/events" element={<EventFeed />} />
        <Route path="/billing" element={<Soon title="Billing" />} />
        <Route path="/analytics" element={<Soon title="Analytics" />} />
        <Route path="*" element={<Navigate to="/" replace />} />
      </Routes>
    </Suspense>
  );
}
