import { Badge, Card, ErrorBox, fmtDate, Loading, PageHeader } from "../../components/ui";
import { LineChart } from "../shared/charts";
import { useServices } from "./useServices";

export default function Services() {
  const { services, problem } = useServices();
  return (
    <div>
      <PageHeader title="Services" />
      <ErrorBox problem={problem} />
      {!services ? (
        <Loading />
      ) : (
        <div className="grid grid-cols-1 gap-3 lg:grid-cols-2" data-loaded="true">
          {services.map((s) => {
            const hist = [...s.history].reverse();
            return (
              <Card key={s.name}>
                <div className="flex items-center justify-between" data-service={s.name} data-status={s.status}>
                  <h2 className="font-semibold">{s.name}</h2>
                  <Badge tone={s.status === "up" ? "green" : s.status === "down" ? "red" : "amber"}>{s.status}</Badge>
                </div>
                <dl className="mt-2 grid grid-cols-2 gap-x-3 text-sm">
                  <dt className="text-slate-600 dark:text-slate-400">URL</dt>
                  <dd className="truncate">{s.url}</dd>
                  <dt className="text-slate-600 dark:text-slate-400">Latency</dt>
                  <dd>{s.latency_ms.toFixed(2)} ms</dd>
                  <dt className="text-slate-600 dark:text-slate-400">Last check</dt>
                  <dd>{fmtDate(s.last_check)}</dd>
                  <dt className="text-slate-600 dark:text-slate-400">Version</dt>
                  <dd>{s.version ?? "—"}</dd>
                  <dt className="text-slate-600 dark:text-slate-400">Last error</dt>
                  <dd className="break-words">{s.error ?? "none"}</dd>
                </dl>
                <div className="mt-2">
                  <LineChart label={`${s.name} latency history`} values={hist.map((h) => h.latency_ms ?? 0)} bad={hist.map((h) => h.status === "down")} />
                </div>
              </Card>
            );
          })}
        </div>
      )}
    </div>
  );
}
