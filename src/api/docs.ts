/** `GET /docs`: renders `/openapi.json` with Scalar's API reference (loaded from its CDN by the browser). */
export const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Crane API</title>
  </head>
  <body>
    <noscript>The Crane API is described by <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</noscript>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
  </body>
</html>`;
