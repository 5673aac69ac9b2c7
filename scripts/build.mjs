// `npm run build`: everything the Worker serves or ships that is built from sources in this
// repository. `npm run dev`, `npm test` and `npm run deploy` run it first.
//   dist/public/   the Worker's static assets ([assets] in wrangler.toml): the console and /docs
//   dist/client/   `crane/client`, the typed client (package export)
//   dist/cli/      the `crane` command (package bin)
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const steps = [
  ["console and /docs", "scripts/build-console.mjs"],
  ["client and CLI", "scripts/build-client.mjs"],
];
for (const [what, script] of steps) {
  if (!existsSync(path.join(ROOT, script))) continue;
  const started = Date.now();
  execFileSync(process.execPath, [script], { cwd: ROOT, stdio: "inherit" });
  console.log(`built ${what} in ${Date.now() - started} ms`);
}
// wrangler refuses to start without the assets directory.
const assets = path.join(ROOT, "dist/public");
if (!existsSync(path.join(assets, "index.html"))) {
  mkdirSync(assets, { recursive: true });
  writeFileSync(path.join(assets, "index.html"), "<!doctype html><title>Crane</title><p>Console not built.</p>\n");
}
