// Vite's `?raw` imports: a file's text (docs/api.md in the API test).
declare module "*.md?raw" {
  const text: string;
  export default text;
}
