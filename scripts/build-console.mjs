// The console and /docs into dist/public (the Worker's static assets). Run by `npm run build`.
//   1. Vite builds console/ (React, @xyflow/react, dagre, uPlot) into dist/public, with
//      console/public/ (_headers, docs.html, docs/init.js) copied as is.
//   2. Scalar's standalone API reference bundle is copied from node_modules to
//      dist/public/docs/scalar.js, so /docs loads nothing from another origin.
//   3. The console's JavaScript is measured (gzip) and listed in dist/public-size.json.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "vite";

const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, "dist/public");

await build({ configFile: path.join(ROOT, "console/vite.config.ts") });

// The package exports no path to its browser bundle: find the package by its entry point.
const require = createRequire(path.join(ROOT, "package.json"));
const scalar = path.resolve(path.dirname(require.resolve("@scalar/api-reference")), "browser/standalone.js");
mkdirSync(path.join(OUT, "docs"), { recursive: true });
copyFileSync(scalar, path.join(OUT, "docs/scalar.js"));

// What the console itself loads (docs/ is the API reference's, not the console's).
const assets = path.join(OUT, "assets");
const files = readdirSync(assets)
  .filter((f) => f.endsWith(".js"))
  .map((f) => {
    const bytes = readFileSync(path.join(assets, f));
    return { file: `assets/${f}`, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
const total = files.reduce((n, f) => n + f.gzip, 0);
writeFileSync(
  path.join(ROOT, "dist/public-size.json"),
  `${JSON.stringify({ js_gzip_bytes: total, files }, null, 2)}\n`,
);
console.log(`console JavaScript: ${(total / 1024).toFixed(1)} KB gzip in ${files.length} files`);
