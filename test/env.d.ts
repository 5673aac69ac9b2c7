import type { D1Migration } from "cloudflare:test";
import type { Env as CraneEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends CraneEnv {
      TEST_MIGRATIONS: D1Migration[];
      SOAK_SEED: string;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
