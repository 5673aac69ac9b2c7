// Builds `crane/client` and the `crane` command (run by scripts/build.mjs):
//   dist/client/index.js     the client, one ES module for Node ≥ 22, browsers and Workers (no dependencies)
//   dist/client/index.d.ts   its types, emitted by tsc from src/client and the contracts it names
//   dist/cli/crane.js        the `crane` bin: a shebang and a Node version check, then it loads
//   dist/cli/main.js         the CLI, one ES module for Node ≥ 22
// The client's types are the zod contracts' inferred types, so its declarations keep importing
// `zod` (a dependency of the package) for `z.infer`; its JavaScript never does.
import { execFileSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const ROOT = path.resolve(import.meta.dirname, "..");
const DIST = path.join(ROOT, "dist");
const { version } = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));

rmSync(path.join(DIST, "client"), { recursive: true, force: true });
rmSync(path.join(DIST, "cli"), { recursive: true, force: true });

await build({
  entryPoints: [path.join(ROOT, "src/client/index.ts")],
  outfile: path.join(DIST, "client/index.js"),
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  sourcemap: true,
  logLevel: "warning",
});

await build({
  entryPoints: [path.join(ROOT, "cli/crane.ts")],
  outfile: path.join(DIST, "cli/main.js"),
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node22",
  define: { CRANE_VERSION: JSON.stringify(version) },
  sourcemap: true,
  logLevel: "warning",
});
// The bin: checks Node's version, then loads main.js (an old Node could not even link it).
await build({
  entryPoints: [path.join(ROOT, "cli/bin.ts")],
  outfile: path.join(DIST, "cli/crane.js"),
  bundle: false,
  format: "esm",
  platform: "node",
  target: "node14",
  banner: { js: "#!/usr/bin/env node" },
  logLevel: "warning",
});
chmodSync(path.join(DIST, "cli/crane.js"), 0o755);

// Declarations: tsc over the client's entry with the DOM library (the types a browser or Node
// user has) and no ambient packages, into dist/client/types/{client,contracts}/.
const TYPES = path.join(DIST, "client/types");
const tsconfig = path.join(DIST, "client/tsconfig.types.json");
writeFileSync(
  tsconfig,
  JSON.stringify({
    files: [path.join(ROOT, "src/client/index.ts")],
    compilerOptions: {
      declaration: true,
      emitDeclarationOnly: true,
      outDir: TYPES,
      rootDir: path.join(ROOT, "src"),
      target: "es2022",
      lib: ["es2024", "dom"],
      types: [],
      module: "es2022",
      moduleResolution: "bundler",
      strict: true,
      skipLibCheck: true,
      verbatimModuleSyntax: true,
      isolatedModules: true,
    },
  }),
);
execFileSync(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: ROOT, stdio: "inherit" });
rmSync(tsconfig);
// tsc keeps the sources' extensionless specifiers; Node's ESM resolution (moduleResolution
// node16/nodenext in a user's tsconfig) needs `.js`.
function addExtensions(dir) {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) {
      addExtensions(file);
      continue;
    }
    if (!name.endsWith(".d.ts")) continue;
    const text = readFileSync(file, "utf8").replace(
      /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+?)(["'])/g,
      (_, head, spec, tail) => (spec.endsWith(".js") ? `${head}${spec}${tail}` : `${head}${spec}.js${tail}`),
    );
    writeFileSync(file, text);
  }
}
addExtensions(TYPES);
writeFileSync(path.join(DIST, "client/index.d.ts"), 'export * from "./types/client/index.js";\n');
