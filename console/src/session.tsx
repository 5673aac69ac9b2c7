import { createContext, type FormEvent, type ReactNode, useCallback, useContext, useState } from "react";
import { CraneClient, DEV_API_KEY } from "./client";
import { ProblemView } from "./components/problem";

/** Session storage: the key lives as long as the tab. */
const KEY = "crane.apiKey";
/**
 * Set when the visitor signed out or their key was refused: the tab then asks for a key instead
 * of signing in with the development key by itself (which would switch tenants without a word).
 */
const SIGNED_OUT = "crane.signedOut";

interface Session {
  client: CraneClient;
  signOut: () => void;
}

const SessionContext = createContext<Session | null>(null);

export function useClient(): CraneClient {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useClient outside a signed-in session");
  return session.client;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in session");
  return session;
}

/**
 * A client for `apiKey` whose first 401 (a key revoked or never valid) calls `onRefused` with the
 * API's detail, and which keeps a key once the API has accepted it.
 */
function guardedClient(apiKey: string, onRefused: (detail: string) => void): CraneClient {
  let kept = sessionStorage.getItem(KEY) === apiKey;
  return new CraneClient({
    baseUrl: location.origin,
    apiKey,
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (res.status === 401) {
        const detail = await res
          .clone()
          .json()
          .then((p: { detail?: string }) => p.detail ?? "The API key was refused")
          .catch(() => "The API key was refused");
        sessionStorage.removeItem(KEY);
        if (apiKey !== DEV_API_KEY) sessionStorage.setItem(SIGNED_OUT, "1");
        kept = false;
        onRefused(detail);
      } else if (res.ok && !kept) {
        sessionStorage.setItem(KEY, apiKey);
        kept = true;
      }
      return res;
    },
  });
}

/**
 * Signs in with the key kept in session storage, or else the development key (which only a
 * development Worker accepts), at once and without a round trip of its own: the page's first
 * requests prove the key. A 401 — then or later, for a key typed in the form too — brings up the
 * sign-in form, with the API's detail unless it was the development key being tried. After a
 * sign-out or a refused key the tab asks, even in development.
 */
export function SessionGate({ children }: { children: ReactNode }) {
  const [refused, setRefused] = useState<{ error: unknown } | null>(null);
  const connect = useCallback((apiKey: string, quietRefusal: boolean) => {
    const onRefused = (detail: string) => {
      // A refused development key is the normal case in production: just ask.
      setRefused({ error: quietRefusal ? null : new Error(detail) });
      setClient(null);
    };
    return guardedClient(apiKey, onRefused);
  }, []);
  const [client, setClient] = useState<CraneClient | null>(() => {
    const stored = sessionStorage.getItem(KEY);
    if (stored === null && sessionStorage.getItem(SIGNED_OUT) !== null) return null;
    return connect(stored ?? DEV_API_KEY, stored === null);
  });
  const signIn = useCallback(
    async (apiKey: string) => {
      const candidate = connect(apiKey, false);
      // Any authenticated read proves the key (and keeps it).
      await candidate.listRuns({ limit: 1 });
      sessionStorage.removeItem(SIGNED_OUT);
      setRefused(null);
      setClient(candidate);
    },
    [connect],
  );

  if (client) {
    const signOut = () => {
      sessionStorage.removeItem(KEY);
      sessionStorage.setItem(SIGNED_OUT, "1");
      setRefused({ error: null });
      setClient(null);
    };
    return <SessionContext.Provider value={{ client, signOut }}>{children}</SessionContext.Provider>;
  }
  return (
    <SignIn
      error={refused?.error ?? null}
      onSubmit={async (key) => {
        try {
          await signIn(key);
        } catch (err) {
          setRefused({ error: err });
        }
      }}
    />
  );
}

function SignIn({ error, onSubmit }: { error: unknown; onSubmit: (key: string) => Promise<void> }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    await onSubmit(key.trim());
    setBusy(false);
  };
  return (
    <main className="signin">
      <h1>Crane console</h1>
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          required
          value={key}
          onChange={(e) => setKey(e.target.value)}
        />
        <p className="hint">
          Kept in this tab's session storage only. An admin creates keys with POST /api/v1/admin/api-keys.
        </p>
        <button type="submit" className="primary" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <ProblemView error={error} />
      <p>
        <a href="/docs">API reference</a>
      </p>
    </main>
  );
}
