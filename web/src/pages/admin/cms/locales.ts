// Locale helpers for the CMS pages: the tenant's locale codes (the default first) and a localized field's
// value (an object of locale → value) shown as text.
//   const codes = localeCodes(locales.data);  displayValue(entry.data.title, codes[0])
import type { Schemas } from "../../../api/client";

export type LocaleList = { data: Schemas["Locale"][]; next_cursor?: string | null };

/** The tenant's locale codes, the default first, then the others in the server's order (by code). */
export function localeCodes(list: LocaleList | null | undefined): string[] {
  const all = list?.data ?? [];
  return [...all.filter((l) => l.is_default), ...all.filter((l) => !l.is_default)].map((l) => l.code);
}

/** A localized field's stored value as locale → value (a plain value, from before it was localized, is the
 * default locale's). */
export function perLocale(v: unknown, defaultCode: string | undefined): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  return defaultCode ? { [defaultCode]: v } : {};
}

/** A field's value as one line of text: a localized one in the default locale (else its first locale). */
export function displayValue(v: unknown, defaultCode?: string): string {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return v.map((x) => displayValue(x)).join(", ");
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const pick = defaultCode !== undefined && o[defaultCode] != null ? o[defaultCode] : Object.values(o).find((x) => x != null);
    return typeof pick === "object" && pick !== null ? JSON.stringify(pick) : displayValue(pick);
  }
  return String(v);
}

/** A localized field's stored values in locales the tenant no longer has (deleted since). */
export function staleLocales(v: unknown, codes: string[]): Record<string, unknown> {
  if (v === undefined || v === null || typeof v !== "object" || Array.isArray(v) || codes.length === 0) return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([c, x]) => !codes.includes(c) && x != null));
}
