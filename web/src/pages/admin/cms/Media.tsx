import { useEffect, useState, type FormEvent } from "react";
import { api, asProblem, authFetch, type Problem, type Schemas } from "../../../api/client";
import { KeysetList } from "../../../components/list";
import { Button, Card, ErrorBox, Field, fmtDate, PageHeader } from "../../../components/ui";

type Media = Schemas["Media"];

/** Files are served behind the bearer token, so images are fetched and shown as blob: URLs. */
function Thumb({ m }: { m: Media }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    if (!m.url || !m.mime_type?.startsWith("image/")) return;
    let url: string | null = null;
    let live = true;
    void authFetch(new Request(m.url)).then(async (r) => {
      if (!r.ok || !live) return;
      url = URL.createObjectURL(await r.blob());
      setSrc(url);
    });
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [m.url, m.mime_type]);
  return src ? <img src={src} alt={m.alt ?? m.filename} className="h-12 w-16 rounded object-cover" /> : <span className="text-xs">{m.mime_type}</span>;
}

export default function MediaLibrary() {
  const [reload, setReload] = useState(0);
  const [file, setFile] = useState<File | null>(null);
  const [alt, setAlt] = useState("");
  const [folder, setFolder] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  const upload = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    const form = new FormData();
    form.append("file", file);
    if (alt) form.append("alt", alt);
    if (folder) form.append("folder", folder);
    const r = await api.POST("/api/v1/cms/media", { body: form as never, bodySerializer: (b: unknown) => b as FormData });
    setBusy(false);
    if (r.error) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    setFile(null);
    setAlt("");
    setReload((n) => n + 1);
  };

  const remove = async (m: Media) => {
    if (!window.confirm(`Delete ${m.filename}?`)) return;
    const r = await api.DELETE("/api/v1/cms/media/{id}", { params: { path: { id: m.id } } });
    setProblem(r.error ? asProblem(r.error, r.response.status) : null);
    setReload((n) => n + 1);
  };

  return (
    <div className="space-y-4">
      <PageHeader title="Media library" />
      <Card title="Upload">
        <form onSubmit={upload} className="flex flex-wrap items-end gap-3">
          <div>
            <label htmlFor="media-file" className="block text-sm font-medium">File</label>
            <input id="media-file" type="file" className="text-sm" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </div>
          <Field label="Alt text" name="alt" value={alt} onChange={setAlt} />
          <Field label="Folder" name="folder" value={folder} onChange={setFolder} />
          <Button kind="primary" type="submit" disabled={!file || busy}>{busy ? "Uploading…" : "Upload"}</Button>
        </form>
        <ErrorBox problem={problem} />
      </Card>
      <KeysetList<Media>
        caption="Media"
        reloadKey={reload}
        searchLabel="Search files"
        filters={[{ name: "mime_type", label: "Type", options: [{ value: "image/png", label: "PNG" }, { value: "image/jpeg", label: "JPEG" }, { value: "application/pdf", label: "PDF" }] }]}
        fetchPage={(query) => api.GET("/api/v1/cms/media", { params: { query } })}
        rowKey={(m) => m.id}
        empty="No media yet."
        columns={[
          { header: "Preview", cell: (m) => <Thumb m={m} /> },
          { header: "File", cell: (m) => m.filename },
          { header: "Folder", cell: (m) => m.folder ?? "—" },
          { header: "Size", cell: (m) => `${((m.size ?? 0) / 1024).toFixed(1)} KiB${m.width ? ` · ${m.width}×${m.height}` : ""}` },
          { header: "Id", cell: (m) => <code className="text-xs">{m.id}</code> },
          { header: "Uploaded", cell: (m) => fmtDate(m.created_at) },
          { header: "Actions", cell: (m) => <Button kind="danger" onClick={() => void remove(m)}>Delete</Button> },
        ]}
      />
    </div>
  );
}
