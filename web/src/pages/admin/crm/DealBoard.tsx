// The deal board: one column per stage of a pipeline; drag a card to another column, or use its
// "Move to" menu (keyboard). The card moves when the server has confirmed the change.
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { api, asProblem, type Problem, type Schemas } from "../../../api/client";
import { Badge, Button, cx, ErrorBox, Loading, PageHeader, Select } from "../../../components/ui";

type Deal = Schemas["Deal"];
type Pipeline = Schemas["Pipeline"];
type Stage = Schemas["Stage"];
type Column = { deals: Deal[]; next: string | null };

const money = (d: Deal) => (d.amount != null && d.currency ? new Intl.NumberFormat(undefined, { style: "currency", currency: d.currency }).format(d.amount / 100) : "");

export default function DealBoard() {
  const [params, setParams] = useSearchParams();
  const [pipelines, setPipelines] = useState<Pipeline[] | null>(null);
  const [cols, setCols] = useState<Record<string, Column>>({});
  const [problem, setProblem] = useState<Problem | null>(null);
  const [over, setOver] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    void api.GET("/api/v1/crm/pipelines", { params: { query: { limit: 200 } } }).then((r) => {
      if (r.error || !r.data) setProblem(asProblem(r.error, r.response.status));
      else setPipelines(r.data.data);
    });
  }, []);

  const pipeline = pipelines?.find((p) => p.id === params.get("pipeline")) ?? pipelines?.find((p) => p.is_default) ?? pipelines?.[0];
  const stages: Stage[] = ((pipeline?.stages ?? []) as Stage[]).slice().sort((a, b) => a.position - b.position);

  const loadStage = async (stage: Stage, cursor?: string) => {
    const query: { pipeline_id: string; stage_id: string; limit: number; cursor?: string; status: string } = { pipeline_id: stage.pipeline_id, stage_id: stage.id, limit: 50, status: "open" };
    if (cursor) query.cursor = cursor;
    const r = await api.GET("/api/v1/crm/deals", { params: { query } });
    if (r.error || !r.data) throw r.error ?? new Error("no data");
    const page = r.data;
    setCols((c) => ({ ...c, [stage.id]: { deals: cursor ? [...(c[stage.id]?.deals ?? []), ...page.data] : page.data, next: page.next_cursor ?? null } }));
  };

  useEffect(() => {
    if (!pipeline) return;
    setLoaded(false);
    setCols({});
    Promise.all(stages.map((s) => loadStage(s)))
      .then(() => setLoaded(true))
      .catch((e) => setProblem(asProblem(e)));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [pipeline?.id]);

  const move = async (deal: Deal, stageId: string) => {
    if (deal.stage_id === stageId) return;
    setBusy(deal.id);
    const r = await api.PATCH("/api/v1/crm/deals/{id}", { params: { path: { id: deal.id } }, body: { stage_id: stageId } });
    setBusy(null);
    if (r.error || !r.data) return setProblem(asProblem(r.error, r.response.status));
    setProblem(null);
    const moved = r.data;
    setCols((c) => {
      const from = c[deal.stage_id];
      const to = c[stageId];
      return {
        ...c,
        [deal.stage_id]: { ...from, deals: from.deals.filter((d) => d.id !== deal.id) },
        [stageId]: { ...(to ?? { next: null }), deals: [moved, ...(to?.deals ?? [])] },
      };
    });
  };

  if (!pipelines) return problem ? <ErrorBox problem={problem} /> : <Loading />;
  return (
    <div>
      <PageHeader
        title="Deal board"
        actions={
          pipelines.length > 1 ? (
            <div className="w-52">
              <Select label="Pipeline" value={pipeline?.id ?? ""} onChange={(v) => setParams({ pipeline: v }, { replace: true })} options={pipelines.map((p) => ({ value: p.id, label: p.name }))} />
            </div>
          ) : undefined
        }
      >
        <p className="text-sm text-slate-600 dark:text-slate-400">Drag a deal to another stage, or use its “Move to” menu.</p>
      </PageHeader>
      <ErrorBox problem={problem} />
      {!pipeline && <p>No pipeline yet.</p>}
      <div className="flex gap-3 overflow-x-auto pb-2" data-loaded={loaded ? "true" : undefined}>
        {stages.map((s) => {
          const col = cols[s.id];
          return (
            <section
              key={s.id}
              aria-label={`Stage ${s.name}`}
              data-stage={s.name}
              onDragOver={(e) => {
                e.preventDefault();
                setOver(s.id);
              }}
              onDragLeave={() => setOver((o) => (o === s.id ? null : o))}
              onDrop={(e) => {
                e.preventDefault();
                setOver(null);
                const id = e.dataTransfer.getData("text/plain");
                const deal = Object.values(cols).flatMap((c) => c.deals).find((d) => d.id === id);
                if (deal) void move(deal, s.id);
              }}
              className={cx("w-64 shrink-0 rounded-lg border bg-slate-100 p-2 dark:bg-slate-900", over === s.id ? "border-indigo-500" : "border-slate-200 dark:border-slate-700")}
            >
              <h2 className="mb-2 flex items-center justify-between text-sm font-semibold">
                {s.name} <Badge>{s.probability}%</Badge>
              </h2>
              <ul className="space-y-2">
                {col?.deals.map((d) => (
                  <li
                    key={d.id}
                    draggable
                    onDragStart={(e) => {
                      e.dataTransfer.setData("text/plain", d.id);
                      e.dataTransfer.effectAllowed = "move";
                    }}
                    data-deal={d.title}
                    className={cx("cursor-grab rounded-md border border-slate-200 bg-white p-2 text-sm shadow-sm dark:border-slate-700 dark:bg-slate-800", busy === d.id && "opacity-50")}
                  >
                    <div className="font-medium">{d.title}</div>
                    <div className="text-xs text-slate-600 dark:text-slate-400">{money(d)}</div>
                    <label className="mt-1 block text-xs">
                      <span className="sr-only">Move {d.title} to</span>
                      <select
                        className="mt-1 w-full rounded border border-slate-300 bg-white px-1 py-0.5 text-xs dark:border-slate-600 dark:bg-slate-900"
                        value={d.stage_id}
                        onChange={(e) => void move(d, e.target.value)}
                      >
                        {stages.map((x) => (
                          <option key={x.id} value={x.id}>
                            {x.id === d.stage_id ? `In ${x.name}` : `Move to ${x.name}`}
                          </option>
                        ))}
                      </select>
                    </label>
                  </li>
                ))}
              </ul>
              {col && col.deals.length === 0 && <p className="py-2 text-center text-xs text-slate-600 dark:text-slate-400">No deals</p>}
              {col?.next && (
                <Button className="mt-2 w-full" onClick={() => void loadStage(s, col.next ?? undefined)}>
                  Load more
                </Button>
              )}
            </section>
          );
        })}
      </div>
    </div>
  );
}
