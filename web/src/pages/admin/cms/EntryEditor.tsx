// An entry's form, generated from its content type's fields (a localized field: one input per tenant locale,
// the default first); save as draft, publish, unpublish, schedule, a preview link for the draft, and the
// versions with restore.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../../api/client";
import { KeysetList, useLoad } from "../../../components/list";
import { Badge, Button, Card, Checkbox, CopyButton, ErrorBox, Field, fmtDate, Loading, PageHeader, Select } from "../../../components/ui";
import { displayValue, localeCodes, perLocale, staleLocales, type LocaleList } from "./locales";

type FieldDef = Schemas["ContentTypeField"];
type Version = Schemas["EntryVersionSummary"];
type Preview = Schemas["PreviewToken"];

/** The form's key for one locale's input of a localized field: the server's error path less "data.". */
const locKey = (field: string, code: string) => `${field}.${code}`;

const blankEntry = { id: "new", data: {}, status: "new", version: 0, published_version: null, published_at: null, publish_at: null } as unknown as Schemas["Entry"];

function toInput(f: FieldDef, v: unknown): string {
  if (v === undefined || v === null) return "";
  if (f.type === "json") return JSON.stringify(v, null, 2);
  if (f.type === "text_list" || (f.multiple && Array.isArray(v))) return (v as unknown[]).join(", ");
  return String(v);
}

function fromInput(f: FieldDef, s: string): unknown {
  if (s === "") return null;
  switch (f.type) {
    case "integer":
      return Number.parseInt(s, 10);
    case "number":
      return Number(s);
    case "json":
      try {
        return JSON.parse(s);
      } catch {
        return s;
      }
    case "text_list":
      return s.split(",").map((x) => x.trim()).filter(Boolean);
    default:
      return f.multiple ? s.split(",").map((x) => x.trim()).filter(Boolean) : s;
  }
}

export default function EntryEditor() {
  const { key = "", id = "" } = useParams();
  const isNew = id === "new";
  const nav = useNavigate();
  const type = useLoad(() => api.GET("/api/v1/cms/content-types/{key}", { params: { path: { key } } }), [key]);
  const entry = useLoad(
    () =>
      isNew
        ? Promise.resolve({ data: blankEntry, response: new Response(null, { status: 200 }) })
        : api.GET("/api/v1/cms/content-types/{key}/entries/{id}", { params: { path: { key, id } } }),
    [key, id],
  );
  const locales = useLoad<LocaleList>(() => api.GET("/api/v1/cms/locales", { params: { query: { limit: 200 } } }), []);
  const [values, setValues] = useState<Record<string, string>>({});
  const [bools, setBools] = useState<Record<string, boolean>>({});
  const [publishAt, setPublishAt] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [vReload, setVReload] = useState(0);
  const [preview, setPreview] = useState<Preview | null>(null);
  const fields = (type.data?.fields ?? []) as FieldDef[];
  const codes = localeCodes(locales.data);
  const initialNote = (useLocation().state as { note?: string } | null)?.note ?? null;

  useEffect(() => {
    if (!entry.data || !type.data || !locales.data) return;
    const data = entry.data.data as Record<string, unknown>;
    const v: Record<string, string> = {};
    const b: Record<string, boolean> = {};
    for (const f of type.data.fields as FieldDef[]) {
      if (f.type === "boolean") b[f.key] = !!data[f.key];
      else if (f.localized) {
        const per = perLocale(data[f.key], codes[0]);
        for (const c of codes) v[locKey(f.key, c)] = toInput(f, per[c]);
      } else v[f.key] = toInput(f, data[f.key]);
    }
    setValues(v);
    setBools(b);
    // codes follows locales.data
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [entry.data, type.data, locales.data]);

  if ((type.loading || entry.loading || locales.loading) && !(entry.data && type.data && locales.data)) return <Loading />;
  if (!entry.data || !type.data || !locales.data) return <ErrorBox problem={entry.problem ?? type.problem ?? locales.problem} />;
  const e = entry.data;
  const stored = e.data as Record<string, unknown>;

  const after = (r: { data?: Schemas["Entry"]; error?: unknown; response: Response }, msg: string) => {
    if (r.error || !r.data) {
      setProblem(asProblem(r.error, r.response.status));
      setNote(null);
      return;
    }
    setProblem(null);
    setNote(msg);
    entry.setData(r.data);
    setVReload((n) => n + 1);
  };

  // A localized field's locale → value object: empty inputs are left out (never sent as ""); on an edit, a
  // locale whose stored value was emptied is sent as null, which removes it (the PATCH merges into the data).
  // Values in a locale the tenant has deleted are not sent: the server drops them at this save.
  const localizedValue = (f: FieldDef, before: Record<string, unknown>) => {
    const out: Record<string, unknown> = {};
    for (const c of codes) {
      const v = fromInput(f, values[locKey(f.key, c)] ?? "");
      if (v !== null) out[c] = v;
      else if (before[c] !== undefined && before[c] !== null) out[c] = null;
    }
    return out;
  };

  const save = async (ev: FormEvent) => {
    ev.preventDefault();
    const data: Record<string, unknown> = {};
    for (const f of fields) {
      if (f.type === "boolean") data[f.key] = !!bools[f.key];
      else if (f.localized) data[f.key] = localizedValue(f, isNew ? {} : perLocale(stored[f.key], codes[0]));
      else data[f.key] = fromInput(f, values[f.key] ?? "");
    }
    const body: Schemas["EntryUpdate"] = { data: data as Record<string, never> };
    if (publishAt) body.publish_at = new Date(publishAt).toISOString();
    if (isNew) {
      const r = await api.POST("/api/v1/cms/content-types/{key}/entries", { params: { path: { key } }, body: body as Schemas["EntryCreate"] });
      if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
      setProblem(null);
      nav(`/cms/types/${key}/entries/${r.data.id}`, { replace: true, state: { note: "Draft saved." } });
      return;
    }
    after(await api.PATCH("/api/v1/cms/content-types/{key}/entries/{id}", { params: { path: { key, id } }, body }), publishAt ? "Saved; publication scheduled." : "Draft saved.");
  };
  const publish = async () => after(await api.POST("/api/v1/cms/content-types/{key}/entries/{id}/publish", { params: { path: { key, id } } }), "Published.");
  const unpublish = async () => after(await api.POST("/api/v1/cms/content-types/{key}/entries/{id}/unpublish", { params: { path: { key, id } } }), "Unpublished.");
  const mintPreview = async () => {
    const r = await api.POST("/api/v1/cms/content-types/{key}/entries/{id}/preview-token", { params: { path: { key, id } }, body: { ttl_seconds: 120 } });
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setPreview(r.data);
  };
  const restore = async (v: number) => after(await api.POST("/api/v1/cms/content-types/{key}/entries/{id}/versions/{version}/restore", { params: { path: { key, id, version: String(v) } } }), `Version ${v} restored as a new draft.`);
  const fe = Object.fromEntries(Object.entries(fieldErrors(problem)).map(([k, v]) => [k.replace(/^data\./, ""), v]));

  return (
    <div className="space-y-4">
      <PageHeader
        title={`${type.data.name}: ${displayValue(stored[fields[0]?.key ?? ""], codes[0]) || e.id}`}
        actions={
          <>
            {!isNew && e.status !== "published" && <Button onClick={() => void mintPreview()}>Preview</Button>}
            {!isNew && <Button kind="primary" onClick={() => void publish()}>Publish</Button>}
            {e.published_version != null && <Button onClick={() => void unpublish()}>Unpublish</Button>}
          </>
        }
      >
        <p className="text-sm">
          <Badge tone={e.status === "published" ? "green" : "amber"}>{e.status}</Badge> v{e.version}
          {e.published_version != null && ` · published v${e.published_version} ${fmtDate(e.published_at)}`}
          {e.publish_at && ` · scheduled ${fmtDate(e.publish_at)}`} ·{" "}
          <Link className="text-indigo-700 underline dark:text-indigo-300" to={`/cms/types/${key}`}>All entries</Link>
        </p>
      </PageHeader>
      {(note ?? initialNote) && <p role="status" className="text-sm text-green-800 dark:text-green-300" data-testid="entry-note">{note ?? initialNote}</p>}
      <ErrorBox problem={problem} />
      {preview?.url && <PreviewLink preview={preview} />}
      <Card>
        <form onSubmit={save} className="grid grid-cols-1 gap-3 md:grid-cols-2" data-loaded="true">
          {fields.map((f) => {
            const label = `${f.name ?? f.key}${f.type === "reference" ? ` (id of a ${f.references})` : f.type === "media" ? " (media id)" : ""}`;
            if (f.localized) return <LocalizedInputs key={f.key} f={f} label={label} codes={codes} values={values} setValues={setValues} errors={fe} stale={isNew ? {} : staleLocales(stored[f.key], codes)} />;
            if (f.type === "boolean") return <Checkbox key={f.key} label={label} checked={!!bools[f.key]} onChange={(c) => setBools((b) => ({ ...b, [f.key]: c }))} />;
            if (f.type === "enum")
              return <Select key={f.key} label={label} name={f.key} errors={fe} value={values[f.key] ?? ""} onChange={(v) => setValues((x) => ({ ...x, [f.key]: v }))} options={[{ value: "", label: "—" }, ...((f.values ?? []) as string[]).map((v) => ({ value: String(v), label: String(v) }))]} />;
            const type = f.type === "integer" || f.type === "number" ? "number" : f.type === "date" ? "date" : f.type === "datetime" ? "datetime-local" : "text";
            return (
              <div key={f.key} className={f.type === "rich_text" || f.type === "json" ? "md:col-span-2" : undefined}>
                <Field label={label} name={f.key} type={type} required={!!f.required} value={values[f.key] ?? ""} onChange={(v) => setValues((x) => ({ ...x, [f.key]: v }))} multiline={f.type === "rich_text" || f.type === "json"} errors={fe} hint={f.type === "text_list" ? "Comma separated" : f.description ?? undefined} />
              </div>
            );
          })}
          <Field label="Publish at (schedule)" name="publish_at" type="datetime-local" value={publishAt} onChange={setPublishAt} errors={fe} />
          <div className="md:col-span-2">
            <Button kind="primary" type="submit">Save draft</Button>
          </div>
        </form>
      </Card>
      {!isNew && <h2 className="text-lg font-semibold">Versions</h2>}
      {!isNew && <KeysetList<Version>
        caption="Versions"
        reloadKey={vReload}
        fetchPage={(query) => api.GET("/api/v1/cms/content-types/{key}/entries/{id}/versions", { params: { path: { key, id }, query } })}
        rowKey={(v) => String(v.version)}
        columns={[
          { header: "Version", cell: (v) => `v${v.version}` },
          { header: "Saved", cell: (v) => fmtDate(v.created_at) },
          { header: "State", cell: (v) => <>{v.current && <Badge tone="indigo">current</Badge>} {v.published && <Badge tone="green">published</Badge>}</> },
          { header: "Actions", cell: (v) => (v.current ? null : <Button onClick={() => void restore(v.version ?? 0)}>Restore v{v.version}</Button>) },
        ]}
      />}
    </div>
  );
}

/** One input per tenant locale (the default first), each labelled with its code: "Title (fr)". */
function LocalizedInputs({ f, label, codes, values, setValues, errors, stale }: { f: FieldDef; label: string; codes: string[]; values: Record<string, string>; setValues: (fn: (v: Record<string, string>) => Record<string, string>) => void; errors: Record<string, string>; stale: Record<string, unknown> }) {
  const multiline = f.type === "rich_text" || f.type === "json";
  return (
    <fieldset className={multiline ? "space-y-2 md:col-span-2" : "space-y-2"} data-localized={f.key}>
      <legend className="text-sm font-semibold">
        {label} <span className="font-normal text-slate-600 dark:text-slate-400">· per locale</span>
      </legend>
      {codes.map((c, i) => {
        const k = locKey(f.key, c);
        const hint = [i === 0 ? (f.required ? "Default locale, required" : "Default locale") : "Optional: reads fall back to the default locale", f.type === "text_list" ? "comma separated" : ""].filter(Boolean).join("; ");
        return <Field key={c} label={`${label} (${c})`} name={k} required={i === 0 && !!f.required} value={values[k] ?? ""} onChange={(v) => setValues((x) => ({ ...x, [k]: v }))} multiline={multiline} errors={errors} hint={hint} />;
      })}
      {Object.keys(stale).length > 0 && (
        <p className="text-xs text-amber-900 dark:text-amber-200" data-testid={`stale-${f.key}`}>
          Also stored in locales this tenant no longer has:{" "}
          {Object.entries(stale).map(([c, v], i) => (
            <span key={c}>
              {i > 0 && "; "}
              <code>{c}</code> “{displayValue(v)}”
            </span>
          ))}
          . Saving removes them (the server takes values only in the tenant&apos;s locales).
        </p>
      )}
    </fieldset>
  );
}

/** The delivery URL that shows the draft with a preview token; the delivery API still wants a publishable key. */
function PreviewLink({ preview }: { preview: Preview }) {
  const url = new URL(preview.url ?? "", window.location.origin).toString();
  return (
    <section aria-label="Preview link" className="space-y-2 rounded-md border border-indigo-300 bg-indigo-50 p-3 dark:border-indigo-700 dark:bg-indigo-950" data-testid="preview-link">
      <p className="text-sm font-medium">Preview of the draft, valid until {fmtDate(preview.expires_at)} (2 minutes):</p>
      <div className="flex flex-wrap items-center gap-2">
        <code className="break-all rounded bg-white px-2 py-1 text-xs dark:bg-slate-900" data-testid="preview-url">
          {url}
        </code>
        <CopyButton text={url} label="Copy preview URL" />
        <a className="text-sm text-indigo-700 underline dark:text-indigo-300" href={url} target="_blank" rel="noopener">
          Open preview
        </a>
      </div>
      <p className="text-xs text-slate-700 dark:text-slate-300">
        The delivery API answers only with a publishable key (made on the API keys page): your app sends it in the{" "}
        <code>X-API-Key</code> header when it reads this URL. Opened in a browser without the key, the link answers 401. Until
        it expires, the link shows the entry&apos;s current draft to whoever holds it and a key.
      </p>
    </section>
  );
}
