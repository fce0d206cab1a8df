import { Link, useNavigate, useParams } from "react-router-dom";
import { api, type Schemas } from "../../../api/client";
import { KeysetList, useLoad } from "../../../components/list";
import { Badge, Button, ErrorBox, fmtDate, PageHeader } from "../../../components/ui";
import { displayValue, localeCodes, type LocaleList } from "./locales";

type Entry = Schemas["Entry"];

export default function Entries() {
  const { key = "" } = useParams();
  const nav = useNavigate();
  const t = useLoad(() => api.GET("/api/v1/cms/content-types/{key}", { params: { path: { key } } }), [key]);
  const fields = (t.data?.fields ?? []) as Schemas["ContentTypeField"][];
  const titleKey = fields.find((f) => f.type === "text")?.key;
  // A localized title shows in the default locale.
  const locales = useLoad<LocaleList>(() => api.GET("/api/v1/cms/locales", { params: { query: { limit: 200 } } }), []);
  const defaultCode = localeCodes(locales.data)[0];

  const create = () => nav(`/cms/types/${key}/entries/new`);

  return (
    <div>
      <PageHeader title={t.data ? `${t.data.name} entries` : "Entries"} actions={<Button kind="primary" onClick={create}>New entry</Button>}>
        <Link className="text-sm text-indigo-700 underline dark:text-indigo-300" to="/cms">All content types</Link>
      </PageHeader>
      <ErrorBox problem={t.problem} />
      <KeysetList<Entry>
        caption="Entries"
        searchLabel="Search entries"
        filters={[{ name: "status", label: "Status", options: ["draft", "published", "changed"].map((s) => ({ value: s, label: s })) }]}
        fetchPage={(query) => api.GET("/api/v1/cms/content-types/{key}/entries", { params: { path: { key }, query } })}
        rowKey={(e) => e.id}
        empty="No entries yet."
        columns={[
          {
            header: "Title",
            cell: (e) => (
              <Link className="text-indigo-700 underline dark:text-indigo-300" to={`/cms/types/${key}/entries/${e.id}`}>
                {(titleKey && displayValue((e.data as Record<string, unknown>)[titleKey], defaultCode)) || e.id}
              </Link>
            ),
          },
          { header: "Status", cell: (e) => <Badge tone={e.status === "published" ? "green" : "amber"}>{e.status}</Badge> },
          { header: "Version", cell: (e) => `v${e.version}${e.published_version ? ` (published v${e.published_version})` : ""}` },
          { header: "Updated", cell: (e) => fmtDate(e.updated_at) },
        ]}
      />
    </div>
  );
}
