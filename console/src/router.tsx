import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from "react";

// A router of five routes needs no library: the History API, one event, one hook.
const CHANGE = "crane:navigate";

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(CHANGE, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(CHANGE, onChange);
  };
}

const snapshot = () => location.pathname + location.search;

/** The current path and query, re-rendering on every navigation. */
export function useLocation(): URL {
  const href = useSyncExternalStore(subscribe, snapshot);
  return new URL(href, location.origin);
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (opts.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event(CHANGE));
  if (!opts.replace) window.scrollTo(0, 0);
}

export type Route =
  | { page: "runs" }
  | { page: "run"; runId: string }
  | { page: "approvals" }
  | { page: "metrics" }
  | { page: "tools" }
  | { page: "not-found" };

export function match(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return { page: "runs" };
  if (path === "/approvals") return { page: "approvals" };
  if (path === "/metrics") return { page: "metrics" };
  if (path === "/tools") return { page: "tools" };
  const run = /^\/runs\/([^/]+)$/.exec(path);
  if (run?.[1]) {
    try {
      return { page: "run", runId: decodeURIComponent(run[1]) };
    } catch {
      return { page: "not-found" }; // malformed percent-encoding: no run has that id
    }
  }
  return { page: "not-found" };
}

/** An `<a>` that navigates in place (a modified click still opens a new tab). */
export function Link({ to, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={click} {...rest} />;
}
