// The tenant's CMS locales: list (the default marked), add one, make one the default, delete one (the
// server refuses the default with a 409, whose detail is shown).
import { useState, type FormEvent } from "react";
import { api, asProblem, fieldErrors, type Problem, type Schemas } from "../../../api/client";
import { KeysetList } from "../../../components/list";
import { Badge, Button, Card, ErrorBox, Field, PageHeader } from "../../../components/ui";

type Locale = Schemas["Locale"];

export default function Locales() {
  const [reload, setReload] = useState(0);
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [rowProblem, setRowProblem] = useState<Problem | null>(null);
  const [note, setNote] = useState<string | null>(null);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const body: Schemas["LocaleCreate"] = { code: code.trim() };
    if (name.trim()) body.name = name.trim();
    const r = await api.POST("/api/v1/cms/locales", { body });
    setBusy(false);
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setRowProblem(null);
    setNote(`Locale ${r.data.code} added.`);
    setCode("");
    setName("");
    setReload((n) => n + 1);
  };

  const makeDefault = async (l: Locale) => {
    const r = await api.PATCH("/api/v1/cms/locales/{code}", { params: { path: { code: l.code } }, body: { is_default: true } });
    setRowProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setNote(r.error ? null : `${l.code} is now the default locale.`);
    setReload((n) => n + 1);
  };

  const remove = async (l: Locale) => {
    if (!window.confirm(`Delete the locale ${l.code}? Entries keep their values in it, but reads no longer offer it and an entry's next save from the form drops them.`)) return;
    const r = await api.DELETE("/api/v1/cms/locales/{code}", { params: { path: { code: l.code } } });
    setRowProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setNote(r.error ? null : `Locale ${l.code} deleted.`);
    setReload((n) => n + 1);
  };

  const fe = fieldErrors(problem);
  // A code the tenant already has answers 409 without field errors: its detail belongs at the code.
  if (problem?.status === 409 && !fe.code && problem.detail) fe.code = problem.detail;
  return (
    <div className="space-y-4">
      <PageHeader title="CMS locales">
        <p className="text-sm text-slate-600 dark:text-slate-400">
          A localized field holds a value per locale; reads fall back to the default locale.
        </p>
      </PageHeader>
      <Card title="Add a locale">
        <form onSubmit={add} className="flex flex-wrap items-start gap-3">
          <Field label="Code" name="code" value={code} onChange={setCode} required errors={fe} hint="e.g. fr, de or en-US" />
          <Field label="Name" name="name" value={name} onChange={setName} errors={fe} hint="e.g. Français" />
          <div className="pt-6">
            <Button kind="primary" type="submit" disabled={busy || !code.trim()}>
              {busy ? "Adding…" : "Add locale"}
            </Button>
          </div>
        </form>
        <ErrorBox problem={problem} />
      </Card>
      {note && (
        <p role="status" className="text-sm text-green-800 dark:text-green-300" data-testid="locale-note">
          {note}
        </p>
      )}
      <ErrorBox problem={rowProblem} />
      <KeysetList<Locale>
        caption="Locales"
        reloadKey={reload}
        fetchPage={(query) => api.GET("/api/v1/cms/locales", { params: { query } })}
        rowKey={(l) => l.code}
        empty="No locales yet."
        columns={[
          { header: "Code", cell: (l) => <code>{l.code}</code> },
          { header: "Name", cell: (l) => l.name ?? "—" },
          { header: "Default", cell: (l) => (l.is_default ? <Badge tone="green">default</Badge> : null) },
          {
            header: "Actions",
            cell: (l) => (
              <div className="flex flex-wrap gap-2">
                {!l.is_default && (
                  <Button onClick={() => void makeDefault(l)} aria-label={`Make default ${l.code}`}>
                    Make default
                  </Button>
                )}
                <Button kind="danger" onClick={() => void remove(l)} aria-label={`Delete ${l.code}`}>
                  Delete
                </Button>
              </div>
            ),
          },
        ]}
      />
    </div>
  );
}
