// The app shell: navigation by role, theme toggle, sign-out; a menu button on narrow screens.
import { useEffect, useState, type ReactNode } from "react";
import { NavLink, useLocation } from "react-router-dom";
import { useSession } from "../api/session";
import { applyTheme, initialTheme, type Theme } from "../theme";
import { Button, cx } from "./ui";

type Item = { to: string; label: string; soon?: boolean };

const operatorNav: Item[] = [
  { to: "/", label: "Overview" },
  { to: "/tenants", label: "Tenants" },
  { to: "/plans", label: "Plans" },
  { to: "/services", label: "Services" },
  { to: "/events", label: "Events" },
];

const adminNav: Item[] = [
  { to: "/", label: "Overview" },
  { to: "/users", label: "Users" },
  { to: "/api-keys", label: "API keys" },
  { to: "/oauth-clients", label: "OAuth clients" },
  { to: "/audit", label: "Audit log" },
  { to: "/webhooks", label: "Webhooks" },
  { to: "/crm/contacts", label: "CRM contacts" },
  { to: "/crm/companies", label: "CRM companies" },
  { to: "/crm/deals", label: "Deal board" },
  { to: "/cms", label: "CMS content" },
  { to: "/cms/media", label: "Media library" },
  { to: "/cms/locales", label: "CMS locales" },
  { to: "/events", label: "Events" },
  { to: "/billing", label: "Billing", soon: true },
  { to: "/analytics", label: "Analytics", soon: true },
];

export function Layout({ children }: { children: ReactNode }) {
  const { me, logout } = useSession();
  const [theme, setTheme] = useState<Theme>(initialTheme());
  const [menuOpen, setMenuOpen] = useState(false);
  const loc = useLocation();
  useEffect(() => setMenuOpen(false), [loc.pathname]);
  const nav = me?.role === "SUPERADMIN" ? operatorNav : adminNav;
  const who = me?.username ?? me?.email ?? "";

  return (
    <div className="min-h-screen md:flex">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2 focus:text-black">
        Skip to content
      </a>
      <header className="flex items-center justify-between border-b border-slate-200 bg-white px-4 py-2 dark:border-slate-800 dark:bg-slate-900 md:hidden">
        <span className="font-semibold">CDXPharaoh</span>
        <Button kind="ghost" aria-expanded={menuOpen} aria-controls="sidenav" onClick={() => setMenuOpen((o) => !o)}>
          Menu
        </Button>
      </header>
      <aside
        id="sidenav"
        className={cx(
          "w-full shrink-0 border-r border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900 md:block md:min-h-screen md:w-56",
          menuOpen ? "block" : "hidden",
        )}
      >
        <div className="hidden px-4 py-4 md:block">
          <div className="text-lg font-bold">CDXPharaoh</div>
          <div className="text-xs text-slate-600 dark:text-slate-400">{me?.role === "SUPERADMIN" ? "Operator console" : "Tenant console"}</div>
        </div>
        <nav aria-label="Main">
          <ul className="space-y-0.5 px-2 pb-2">
            {nav.map((i) => (
              <li key={i.to}>
                <NavLink
                  to={i.to}
                  end={i.to === "/" || i.to === "/cms"}
                  className={({ isActive }) =>
                    cx(
                      "flex items-center justify-between rounded-md px-3 py-1.5 text-sm",
                      isActive ? "bg-indigo-100 font-semibold text-indigo-900 dark:bg-indigo-900 dark:text-indigo-50" : "text-slate-700 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800",
                    )
                  }
                >
                  {i.label}
                  {i.soon && <span className="text-xs text-slate-600 dark:text-slate-400">soon</span>}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="space-y-2 border-t border-slate-200 px-4 py-3 text-sm dark:border-slate-800">
          <div>
            <div className="truncate" title={who}>
              {who}
            </div>
            <div className="text-xs text-slate-600 dark:text-slate-400">{me?.role}</div>
          </div>
          <div className="flex gap-2">
            <Button
              onClick={() => {
                const t = theme === "dark" ? "light" : "dark";
                setTheme(t);
                applyTheme(t, true);
              }}
              aria-label={`${theme === "dark" ? "Light" : "Dark"} theme`}
            >
              {theme === "dark" ? "Light" : "Dark"}
            </Button>
            <Button onClick={() => void logout()}>Sign out</Button>
          </div>
        </div>
      </aside>
      <main id="main" className="min-w-0 flex-1 p-4 md:p-6" data-path={loc.pathname} tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
