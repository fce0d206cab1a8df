// Light/dark theme: the system's preference unless the user picked one (kept in localStorage: not a secret).
export type Theme = "light" | "dark";

export function initialTheme(): Theme {
  const saved = localStorage.getItem("cdx-theme");
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function applyTheme(t: Theme, save = false) {
  document.documentElement.classList.toggle("dark", t === "dark");
  if (save) localStorage.setItem("cdx-theme", t);
}
