import { defineConfig } from "vite";

// The console: built into dist/public, which wrangler.toml's [assets] serves. Everything it loads
// comes from Crane's own origin (see public/_headers for the Content-Security-Policy).
export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  publicDir: "public",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "react" } },
  build: {
    outDir: "../dist/public",
    emptyOutDir: true,
    target: "es2022",
    // No data: URIs: the CSP's img-src and font-src are 'self'.
    assetsInlineLimit: 0,
    // Chromium, Firefox and Safari support modulepreload; the polyfill would only add bytes.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      onwarn(warning, warn) {
        // @xyflow/react starts with "use client" (for React Server Components), meaningless here.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
});
