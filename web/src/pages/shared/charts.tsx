// Tiny SVG charts (no chart library): a bar chart for daily counts and a line for latency history.

export function BarChart({ data, label }: { data: { x: string; y: number }[]; label: string }) {
  const w = 600;
  const hgt = 160;
  const max = Math.max(1, ...data.map((d) => d.y));
  const bw = data.length ? w / data.length : w;
  return (
    <svg viewBox={`0 0 ${w} ${hgt + 20}`} role="img" aria-label={label} className="h-48 w-full">
      <title>{label}</title>
      {data.map((d, i) => {
        const h = (d.y / max) * hgt;
        return (
          <g key={i}>
            <rect x={i * bw + 1} y={hgt - h} width={Math.max(1, bw - 2)} height={h} className="fill-indigo-500">
              <title>{`${d.x}: ${d.y}`}</title>
            </rect>
          </g>
        );
      })}
      <line x1="0" y1={hgt} x2={w} y2={hgt} className="stroke-slate-400" />
      {data.length > 0 && (
        <>
          <text x="0" y={hgt + 15} className="fill-slate-600 text-[10px] dark:fill-slate-400">
            {data[0].x}
          </text>
          <text x={w} y={hgt + 15} textAnchor="end" className="fill-slate-600 text-[10px] dark:fill-slate-400">
            {data[data.length - 1].x}
          </text>
        </>
      )}
      <text x={w} y="10" textAnchor="end" className="fill-slate-600 text-[10px] dark:fill-slate-400">
        max {max}
      </text>
    </svg>
  );
}

export function LineChart({ values, label, bad }: { values: number[]; label: string; bad?: boolean[] }) {
  const w = 240;
  const h = 40;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - (v / max) * (h - 4) - 2).toFixed(1)}`).join(" ");
  return (
    <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label} className="h-10 w-60">
      <title>{label}</title>
      <polyline points={pts} fill="none" className="stroke-indigo-500" strokeWidth="1.5" />
      {bad?.map((b, i) => (b ? <circle key={i} cx={i * step} cy={h - 3} r="2" className="fill-red-600" /> : null))}
    </svg>
  );
}
