// Renders /openapi.json with Scalar's API reference, served by Crane itself: no fonts, telemetry,
// proxy or registry from scalar.com (the page's Content-Security-Policy would refuse them anyway).
window.Scalar.createApiReference("#api-reference-root", {
  url: "/openapi.json",
  withDefaultFonts: false,
  telemetry: false,
  proxyUrl: "",
  showDeveloperTools: "never",
  agent: { disabled: true },
  mcp: { disabled: true },
  externalUrls: {
    dashboardUrl: "/docs",
    registryUrl: "/docs",
    proxyUrl: "/docs",
    apiBaseUrl: "/docs",
  },
});
