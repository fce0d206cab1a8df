// The signed-in user: restored on load from the refresh cookie, set by login, cleared by logout.
//   const { me, login, logout } = useSession();
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, asProblem, refresh, REFRESH_HEADER, setSignedOutHandler, setTokens, type Problem, type Schemas } from "./client";

export type Me = Schemas["Me"];
type LoginInput = { kind: "superadmin"; username: string; password: string } | { kind: "admin"; email: string; password: string; tenant: string };

type Session = {
  me: Me | null;
  loading: boolean;
  login: (input: LoginInput) => Promise<Problem | null>;
  logout: () => Promise<void>;
};

const Ctx = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);

  const loadMe = useCallback(async () => {
    const { data } = await api.GET("/api/v1/auth/me");
    setMe(data ?? null);
    return data ?? null;
  }, []);

  useEffect(() => {
    setSignedOutHandler(() => {
      setTokens(null);
      setMe(null);
    });
    (async () => {
      if (await refresh()) await loadMe();
      setLoading(false);
    })();
  }, [loadMe]);

  const login = useCallback(
    async (input: LoginInput): Promise<Problem | null> => {
      try {
        const res =
          input.kind === "superadmin"
            ? await api.POST("/api/v1/auth/superadmin/login", {
                body: { username: input.username, password: input.password },
                headers: REFRESH_HEADER,
                credentials: "same-origin",
              })
            : await api.POST("/api/v1/auth/login", {
                body: { email: input.email, password: input.password, tenant: input.tenant },
                headers: REFRESH_HEADER,
                credentials: "same-origin",
              });
        if (res.error || !res.data) return asProblem(res.error, res.response.status);
        setTokens(res.data);
        await loadMe();
        return null;
      } catch (e) {
        return asProblem(e);
      }
    },
    [loadMe],
  );

  const logout = useCallback(async () => {
    try {
      await api.POST("/api/v1/auth/logout", { body: {}, headers: REFRESH_HEADER, credentials: "same-origin" });
    } finally {
      setTokens(null);
      setMe(null);
    }
  }, []);

  const value = useMemo(() => ({ me, loading, login, logout }), [me, loading, login, logout]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): Session {
  const s = useContext(Ctx);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}
