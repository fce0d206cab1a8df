// Keyset-paginated lists: the API's next_cursor drives "Load more" (never a count); search q and filters
// live in the URL query string so a list can be linked and reloaded as it was.
//   <KeysetList fetchPage={(p) => api.GET("/api/v1/tenants", { params: { query: p } })} columns={…} />
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { useSearchParams } from "react-router-dom";
import { asProblem, type Problem } from "../api/client";
import { Button, Empty, ErrorBox, inputCls, Loading, Select } from "./ui";

export type Page<T> = { data: T[]; next_cursor?: string | null };
export type Fetched<T> = { data?: Page<T>; error?: unknown; response: Response };
export type PageQuery = { cursor?: string; q?: string; limit?: number } & Record<string, string | number | undefined>;

export type Column<T> = { header: string; cell: (row: T) => ReactNode; className?: string };
export type Filter = { name: string; label: string; options: { value: string; label: string }[] };

/** Loads one thing (an overview, a detail) with loading and problem states. */
export function useLoad<T>(load: () => Promise<{ data?: T; error?: unknown; response: Response }>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load()
      .then((r) => {
        if (!live) return;
        if (r.error !== undefined || r.data === undefined) setProblem(asProblem(r.error, r.response.status));
        else {
          setData(r.data);
          setProblem(null);
        }
      })
      .catch((e) => live && setProblem(asProblem(e)))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, setData, problem, loading, reload };
}

type ListProps<T> = {
  fetchPage: (q: PageQuery) => Promise<Fetched<T>>;
  columns: Column<T>[];
  rowKey: (row: T) => string;
  searchLabel?: string;
  filters?: Filter[];
  empty?: ReactNode;
  reloadKey?: unknown;
  caption: string;
  pageSize?: number;
  onRow?: (row: T) => void;
};

export function KeysetList<T>({ fetchPage, columns, rowKey, searchLabel, filters = [], empty = "Nothing here yet.", reloadKey, caption, pageSize = 50 }: ListProps<T>) {
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const filterValues = Object.fromEntries(filters.map((f) => [f.name, params.get(f.name) ?? ""]));
  const filterKey = JSON.stringify(filterValues);
  const [typed, setTyped] = useState(q);
  const [rows, setRows] = useState<T[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [loaded, setLoaded] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const gen = useRef(0);

  const setParam = useCallback(
    (name: string, value: string) => {
      setParams(
        (p) => {
          const n = new URLSearchParams(p);
          if (value) n.set(name, value);
          else n.delete(name);
          return n;
        },
        { replace: true },
      );
    },
    [setParams],
  );

  // Debounced search: the URL changes 250 ms after typing stops.
  useEffect(() => {
    if (typed === q) return;
    const t = setTimeout(() => setParam("q", typed), 250);
    return () => clearTimeout(t);
  }, [typed, q, setParam]);

  const load = useCallback(
    async (cursor: string | undefined) => {
      const my = ++gen.current;
      setLoading(true);
      try {
        const query: PageQuery = { limit: pageSize };
        if (cursor) query.cursor = cursor;
        if (q) query.q = q;
        for (const [k, v] of Object.entries(filterValues)) if (v) query[k] = v;
        const r = await fetchPage(query);
        if (my !== gen.current) return;
        if (r.error !== undefined || !r.data) {
          setProblem(asProblem(r.error, r.response.status));
        } else {
          const page = r.data;
          setProblem(null);
          setRows((old) => (cursor ? [...old, ...page.data] : page.data));
          setNext(page.next_cursor ?? null);
          setLoaded(true);
        }
      } catch (e) {
        if (my === gen.current) setProblem(asProblem(e));
      } finally {
        if (my === gen.current) setLoading(false);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [q, filterKey, pageSize, fetchPage],
  );

  useEffect(() => {
    void load(undefined);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q, filterKey, reloadKey]);

  return (
    <div className="space-y-3">
      {(searchLabel || filters.length > 0) && (
        <div className="flex flex-wrap items-end gap-3" role="search">
          {searchLabel && (
            <div className="min-w-[12rem] flex-1">
              <label className="block text-sm font-medium" htmlFor={`search-${caption}`}>
                {searchLabel}
              </label>
              <input id={`search-${caption}`} type="search" className={inputCls} value={typed} onChange={(e) => setTyped(e.target.value)} />
            </div>
          )}
          {filters.map((f) => (
            <div key={f.name} className="w-40">
              <Select label={f.label} value={filterValues[f.name] ?? ""} onChange={(v) => setParam(f.name, v)} options={[{ value: "", label: "Any" }, ...f.options]} />
            </div>
          ))}
        </div>
      )}
      <ErrorBox problem={problem} />
      <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white dark:border-slate-700 dark:bg-slate-900" data-loaded={loaded ? "true" : undefined} aria-busy={loading}>
        <table className="min-w-full text-left text-sm">
          <caption className="sr-only">{caption}</caption>
          <thead className="border-b border-slate-200 bg-slate-100 text-xs uppercase text-slate-700 dark:border-slate-700 dark:bg-slate-800 dark:text-slate-300">
            <tr>
              {columns.map((c) => (
                <th key={c.header} scope="col" className={`px-3 py-2 ${c.className ?? ""}`}>
                  {c.header}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={rowKey(r)} className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                {columns.map((c) => (
                  <td key={c.header} className={`px-3 py-2 align-top ${c.className ?? ""}`}>
                    {c.cell(r)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        {loaded && rows.length === 0 && !problem && <Empty>{empty}</Empty>}
        {!loaded && loading && <Loading />}
      </div>
      {next && (
        <Button onClick={() => void load(next)} disabled={loading}>
          {loading ? "Loading…" : "Load more"}
        </Button>
      )}
    </div>
  );
}
