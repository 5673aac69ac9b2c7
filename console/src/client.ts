// The console talks to Crane only through the project's typed client (public API + live WebSocket).
// DEV_API_KEY is accepted only while the Worker's ENVIRONMENT is development.
export { CraneClient, CraneError, DEV_API_KEY } from "../../src/client";
