// Small shared controls: every input has a label, errors come from problem+json (detail, field errors).
//   <Field label="Name" name="name" value={v} onChange={setV} errors={fe} />
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import type { Problem } from "../api/client";

export function cx(...c: (string | false | null | undefined)[]) {
  return c.filter(Boolean).join(" ");
}

const btnBase =
  "inline-flex items-center justify-center gap-1 rounded-md px-3 py-1.5 text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 disabled:opacity-50";
const btnKinds = {
  primary: "bg-indigo-700 text-white hover:bg-indigo-800",
  secondary: "border border-slate-300 bg-white text-slate-800 hover:bg-slate-100 dark:border-slate-600 dark:bg-slate-800 dark:text-slate-100 dark:hover:bg-slate-700",
  danger: "bg-red-700 text-white hover:bg-red-800",
  ghost: "text-slate-700 hover:bg-slate-200 dark:text-slate-200 dark:hover:bg-slate-800",
};

export function Button({ kind = "secondary", className, ...props }: React.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: keyof typeof btnKinds }) {
  return <button type="button" {...props} className={cx(btnBase, btnKinds[kind], className)} />;
}

export const inputCls =
  "block w-full rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm text-slate-900 focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500 dark:border-slate-600 dark:bg-slate-900 dark:text-slate-100";

type FieldProps = {
  label: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  type?: string;
  errors?: Record<string, string>;
  required?: boolean;
  placeholder?: string;
  autoComplete?: string;
  multiline?: boolean;
  hint?: string;
};

export function Field({ label, name, value, onChange, type = "text", errors, required, placeholder, autoComplete, multiline, hint }: FieldProps) {
  const id = useId();
  const err = errors?.[name];
  const common = {
    id,
    name,
    value,
    required,
    placeholder,
    "aria-invalid": err ? true : undefined,
    "aria-describedby": err ? `${id}-err` : undefined,
    className: inputCls,
  };
  return (
    <div className="space-y-1">
      <label htmlFor={id} className="block text-sm font-medium">
        {label}
        {required && <span aria-hidden="true"> *</span>}
      </label>
      {multiline ? (
        <textarea {...common} rows={4} onChange={(e) => onChange(e.target.value)} />
      ) : (
        <input {...common} type={type} autoComplete={autoComplete} onChange={(e) => onChange(e.target.value)} />
      )}
      {hint && !err && <p className="text-xs text-slate-600 dark:text-slate-400">{hint}</p>}
      {err && (
        <p id={`${id}-err`} className="text-xs text-red-700 dark:text-red-400">
          {err}
        </p>
      )}
    </div>
  );
}

export function Select({ label, value, onChange, options, name, errors, hideLabel }: { label: string; value: string; onChange: (v: string) => void; options: { value: string; label: string }[]; name?: string; errors?: Record<string, string>; hideLabel?: boolean }) {
  const id = useId();
  const err = name ? errors?.[name] : undefined;
  return (
    <div className="space-y-1">
      <label htmlFor={id} className={cx("block text-sm font-medium", hideLabel && "sr-only")}>
        {label}
      </label>
      <select id={id} name={name} value={value} onChange={(e) => onChange(e.target.value)} className={inputCls} aria-invalid={err ? true : undefined}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {err && <p className="text-xs text-red-700 dark:text-red-400">{err}</p>}
    </div>
  );
}

export function Checkbox({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  const id = useId();
  return (
    <div className="flex items-center gap-2">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} className="h-4 w-4" />
      <label htmlFor={id} className="text-sm">
        {label}
      </label>
    </div>
  );
}

export function ErrorBox({ problem }: { problem: Problem | null | undefined }) {
  if (!problem) return null;
  return (
    <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">
      <strong>{problem.title}</strong>
      {problem.detail && <span>: {problem.detail}</span>}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p role="status" className="py-6 text-sm text-slate-600 dark:text-slate-400">
      {label}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="py-6 text-center text-sm text-slate-600 dark:text-slate-400">{children}</p>;
}

export function Badge({ tone = "slate", children }: { tone?: "green" | "red" | "amber" | "slate" | "indigo"; children: ReactNode }) {
  const tones = {
    green: "bg-green-100 text-green-900 dark:bg-green-900 dark:text-green-100",
    red: "bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100",
    amber: "bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100",
    slate: "bg-slate-200 text-slate-800 dark:bg-slate-700 dark:text-slate-100",
    indigo: "bg-indigo-100 text-indigo-900 dark:bg-indigo-900 dark:text-indigo-100",
  };
  return <span className={cx("inline-block rounded px-1.5 py-0.5 text-xs font-medium", tones[tone])}>{children}</span>;
}

export function PageHeader({ title, actions, children }: { title: string; actions?: ReactNode; children?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
      <div>
        <h1 className="text-xl font-semibold">{title}</h1>
        {children}
      </div>
      {actions && <div className="flex flex-wrap gap-2">{actions}</div>}
    </div>
  );
}

export function Card({ title, children, className }: { title?: string; children: ReactNode; className?: string }) {
  return (
    <section className={cx("rounded-lg border border-slate-200 bg-white p-4 dark:border-slate-700 dark:bg-slate-900", className)}>
      {title && <h2 className="mb-2 text-sm font-semibold text-slate-700 dark:text-slate-300">{title}</h2>}
      {children}
    </section>
  );
}

export function Stat({ label, value }: { label: string; value: ReactNode }) {
  return (
    <div className="rounded-lg border border-slate-200 bg-white p-4 dark:border-slate-700 dark:bg-slate-900">
      <div className="text-xs uppercase tracking-wide text-slate-600 dark:text-slate-400">{label}</div>
      <div className="mt-1 text-2xl font-semibold" data-stat={label}>
        {value}
      </div>
    </div>
  );
}

/** A modal dialog (native <dialog>: focus trapped, Esc closes). */
export function Modal({ title, open, onClose, children }: { title: string; open: boolean; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby={id}
      onClose={onClose}
      className="w-[min(36rem,95vw)] rounded-lg border border-slate-300 bg-white p-0 text-slate-900 backdrop:bg-black/50 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100"
    >
      {open && (
        <div className="p-4">
          <div className="mb-3 flex items-center justify-between">
            <h2 id={id} className="text-lg font-semibold">
              {title}
            </h2>
            <Button kind="ghost" onClick={onClose} aria-label="Close dialog">
              ✕
            </Button>
          </div>
          {children}
        </div>
      )}
    </dialog>
  );
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <Button
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        } catch {
          setDone(false);
        }
      }}
    >
      {done ? "Copied" : label}
    </Button>
  );
}

/** A secret the server shows once (API key, webhook or client secret). */
export function SecretOnce({ label, secret }: { label: string; secret: string }) {
  return (
    <div className="space-y-2 rounded-md border border-amber-300 bg-amber-50 p-3 dark:border-amber-700 dark:bg-amber-950" data-testid="secret-once">
      <p className="text-sm font-medium">{label} — shown once: copy it now, it cannot be shown again.</p>
      <div className="flex flex-wrap items-center gap-2">
        <code className="break-all rounded bg-white px-2 py-1 text-sm dark:bg-slate-900" data-testid="secret-value">
          {secret}
        </code>
        <CopyButton text={secret} />
      </div>
    </div>
  );
}

export function fmtDate(s: string | null | undefined) {
  if (!s) return "—";
  const d = new Date(s);
  return isNaN(d.getTime()) ? s : d.toLocaleString();
}

export function fmtMoney(minor: Record<string, number> | undefined) {
  const e = Object.entries(minor ?? {});
  if (!e.length) return "0";
  return e.map(([cur, v]) => new Intl.NumberFormat(undefined, { style: "currency", currency: cur }).format(v / 100)).join(" · ");
}
