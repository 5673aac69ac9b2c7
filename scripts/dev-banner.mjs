// Printed by `npm run dev` before wrangler starts: the local credentials a newcomer needs.
console.log(`
  Crane (local development)
    API:        http://localhost:8787/api/v1   docs: http://localhost:8787/docs
    API key:    crane-dev-key    (tenant "dev"; honoured only when ENVIRONMENT=development)
    Admin:      crane-dev-admin
`);
