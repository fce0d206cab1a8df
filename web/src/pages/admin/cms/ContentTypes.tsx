import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../../api/client";
import { KeysetList } from "../../../components/list";
import { Button, Checkbox, ErrorBox, Field, Modal, PageHeader, Select } from "../../../components/ui";

type CType = Schemas["ContentType"];
type FieldDef = Schemas["ContentTypeField"];
const LOCALIZABLE: string[] = ["text", "rich_text", "text_list", "json"];
const TYPES = ["text", "rich_text", "integer", "number", "boolean", "date", "datetime", "enum", "reference", "media", "json", "text_list"] as const;

export default function ContentTypes() {
  const [reload, setReload] = useState(0);
  const [editing, setEditing] = useState<CType | null>(null);
  const [open, setOpen] = useState(false);
  const [key, setKey] = useState("");
  const [name, setName] = useState("");
  const [fields, setFields] = useState<FieldDef[]>([]);
  const [problem, setProblem] = useState<Problem | null>(null);

  const start = (t: CType | null) => {
    setEditing(t);
    setKey(t?.key ?? "");
    setName(t?.name ?? "");
    setFields((t?.fields as FieldDef[] | undefined) ?? [{ key: "title", type: "text", required: true }]);
    setProblem(null);
    setOpen(true);
  };
  const setField = (i: number, patch: Partial<FieldDef>) => setFields((fs) => fs.map((f, j) => (j === i ? { ...f, ...patch } : f)));

  const save = async (e: FormEvent) => {
    e.preventDefault();
    // The rules the form does not show (min, max, pattern, unique, default, …) are kept as they were; those
    // that do not apply to the field's (possibly changed) type are dropped.
    const clean = fields.map((f) => {
      const out: FieldDef = { ...f, key: f.key, type: f.type };
      delete out.required;
      delete out.values;
      delete out.references;
      delete out.localized;
      if (f.required) out.required = true;
      if (f.type === "enum") out.values = f.values ?? [];
      if (f.type === "reference" && f.references) out.references = f.references;
      if (f.localized && LOCALIZABLE.includes(f.type)) out.localized = true;
      if (f.type !== "reference" && f.type !== "media") delete out.multiple;
      // A field whose type changed (or a new one) keeps none of the rules of the type it had.
      const before = (editing?.fields as FieldDef[] | undefined)?.find((o) => o.key === f.key);
      if (!before || before.type !== f.type) {
        const rules = out as Record<string, unknown>;
        for (const rule of ["min", "max", "pattern", "unique", "default"]) delete rules[rule];
      }
      return out;
    });
    const r = editing
      ? await api.PATCH("/api/v1/cms/content-types/{key}", { params: { path: { key: editing.key } }, body: { name, fields: clean } as Schemas["ContentTypeUpdate"] })
      : await api.POST("/api/v1/cms/content-types", { body: { key, name, fields: clean } as Schemas["ContentTypeCreate"] });
    if (r.error) return setProblem(asProblem(r.error, r.response.status));
    setOpen(false);
    setReload((n) => n + 1);
  };
  const fe = fieldErrors(problem);

  return (
    <div>
      <PageHeader title="Content types" actions={<Button kind="primary" onClick={() => start(null)}>New content type</Button>} />
      <KeysetList<CType>
        caption="Content types"
        reloadKey={reload}
        fetchPage={(query) => api.GET("/api/v1/cms/content-types", { params: { query } })}
        rowKey={(t) => t.id}
        empty="No content types yet."
        columns={[
          { header: "Name", cell: (t) => <Link className="text-indigo-700 underline dark:text-indigo-300" to={`/cms/types/${t.key}`}>{t.name}</Link> },
          { header: "Key", cell: (t) => <code>{t.key}</code> },
          { header: "Fields", cell: (t) => (t.fields as FieldDef[]).map((f) => `${f.key}:${f.type}${f.localized ? " (localized)" : ""}`).join(", ") },
          { header: "Actions", cell: (t) => <Button onClick={() => start(t)} aria-label={`Edit fields of ${t.key}`}>Edit fields</Button> },
        ]}
      />
      <Modal title={editing ? `Edit ${editing.name}` : "New content type"} open={open} onClose={() => setOpen(false)}>
        <form onSubmit={save} className="space-y-3">
          {!editing && <Field label="Key" name="key" value={key} onChange={setKey} required errors={fe} />}
          <Field label="Name" name="name" value={name} onChange={setName} required errors={fe} />
          <fieldset className="space-y-2">
            <legend className="text-sm font-medium">Fields</legend>
            {fields.map((f, i) => (
              <div key={i} className="grid grid-cols-2 items-end gap-2 rounded border border-slate-200 p-2 dark:border-slate-700">
                <Field label={`Field ${i + 1} key`} name={`fields.${i}.key`} value={f.key} onChange={(v) => setField(i, { key: v })} errors={fe} />
                <Select label={`Field ${i + 1} type`} value={f.type} onChange={(v) => setField(i, { type: v as FieldDef["type"] })} options={TYPES.map((t) => ({ value: t, label: t }))} />
                {f.type === "enum" && <Field label="Values (comma separated)" name={`fields.${i}.values`} value={(f.values ?? []).join(",")} onChange={(v) => setField(i, { values: v.split(",").map((x) => x.trim()).filter(Boolean) })} errors={fe} />}
                {f.type === "reference" && <Field label="References type key" name={`fields.${i}.references`} value={f.references ?? ""} onChange={(v) => setField(i, { references: v })} errors={fe} />}
                <Checkbox label="Required" checked={!!f.required} onChange={(c) => setField(i, { required: c })} />
                {LOCALIZABLE.includes(f.type) && <Checkbox label={`Field ${i + 1} localized (a value per locale)`} checked={!!f.localized} onChange={(c) => setField(i, { localized: c })} />}
                <Button kind="ghost" onClick={() => setFields((fs) => fs.filter((_, j) => j !== i))}>Remove field {i + 1}</Button>
              </div>
            ))}
            <Button onClick={() => setFields((fs) => [...fs, { key: "", type: "text" }])}>Add field</Button>
          </fieldset>
          <ErrorBox problem={problem} />
          <Button kind="primary" type="submit">Save content type</Button>
        </form>
      </Modal>
    </div>
  );
}
