// Vite's `?raw` imports: a file's text (docs/api.md in the API test, wrangler.toml in the fair-share test).
declare module "*.md?raw" {
  const text: string;
  export default text;
}
declare module "*.toml?raw" {
  const text: string;
  export default text;
}
