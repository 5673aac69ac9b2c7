import { Component, type ErrorInfo, lazy, type ReactNode, Suspense, useEffect } from "react";
import { ProblemView } from "./components/problem";
import { ApprovalsPage } from "./pages/approvals";
import { RunsPage } from "./pages/runs";
import { ToolsPage } from "./pages/tools";
import { Link, match, type Route, useLocation } from "./router";
import { SessionGate, useSession } from "./session";

// The graph (xyflow, dagre) and the charts (uPlot) load with the pages that draw them.
const loadRunPage = () => import("./pages/run");
const loadMetricsPage = () => import("./pages/metrics");
// A deep link fetches its page's code at once, alongside the entry's own work.
if (location.pathname.startsWith("/runs/")) void loadRunPage();
if (location.pathname.startsWith("/metrics")) void loadMetricsPage();
const RunPage = lazy(() => loadRunPage().then((m) => ({ default: m.RunPage })));
const MetricsPage = lazy(() => loadMetricsPage().then((m) => ({ default: m.MetricsPage })));

const NAV: { to: string; label: string; pages: Route["page"][] }[] = [
  { to: "/", label: "Runs", pages: ["runs", "run"] },
  { to: "/approvals", label: "Approvals", pages: ["approvals"] },
  { to: "/metrics", label: "Metrics", pages: ["metrics"] },
  { to: "/tools", label: "Tools", pages: ["tools"] },
];

export function App() {
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <SessionGate>
        <Shell />
      </SessionGate>
    </>
  );
}

function Shell() {
  const url = useLocation();
  const route = match(url.pathname);
  const { signOut } = useSession();
  useEffect(() => {
    const titles: Record<Route["page"], string> = {
      runs: "Runs",
      run: "Run",
      approvals: "Approvals",
      metrics: "Metrics",
      tools: "Tools",
      "not-found": "Not found",
    };
    document.title = `${titles[route.page]} · Crane`;
  }, [route.page]);
  return (
    <>
      <header className="topbar">
        <Link to="/" className="brand">
          Crane
        </Link>
        <nav aria-label="Console">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <Link to={n.to} aria-current={n.pages.includes(route.page) ? "page" : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
            <li>
              <a href="/docs">API docs</a>
            </li>
          </ul>
        </nav>
        <button type="button" className="link signout" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorBoundary key={url.pathname}>
          <Suspense fallback={<p aria-busy="true">Loading…</p>}>
            <Page route={route} search={url.searchParams} />
          </Suspense>
        </ErrorBoundary>
      </main>
    </>
  );
}

function Page({ route, search }: { route: Route; search: URLSearchParams }) {
  switch (route.page) {
    case "runs":
      return <RunsPage search={search} />;
    case "run":
      return <RunPage key={route.runId} runId={route.runId} />;
    case "approvals":
      return <ApprovalsPage />;
    case "metrics":
      return <MetricsPage />;
    case "tools":
      return <ToolsPage />;
    case "not-found":
      return (
        <section>
          <h1>Not found</h1>
          <p>
            No page here. <Link to="/">Back to the runs</Link>.
          </p>
        </section>
      );
  }
}

/** A rendering bug shows its message instead of a blank page. */
class ErrorBoundary extends Component<{ children: ReactNode }, { error: unknown }> {
  override state = { error: null as unknown };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  override componentDidCatch(error: unknown, info: ErrorInfo) {
    console.error(error, info.componentStack);
  }
  override render() {
    return this.state.error ? <ProblemView error={this.state.error} title="This page failed" /> : this.props.children;
  }
}
