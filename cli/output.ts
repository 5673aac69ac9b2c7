import type { Writable } from "node:stream";

type Paint = (text: string) => string;

export interface Palette {
  green: Paint;
  red: Paint;
  yellow: Paint;
  cyan: Paint;
  dim: Paint;
  bold: Paint;
}

const sgr =
  (open: number, close: number): Paint =>
  (text) =>
    `\x1b[${open}m${text}\x1b[${close}m`;
const plain: Paint = (text) => text;

/** Colour only on a terminal, and never with NO_COLOR set to anything non-empty (no-color.org). */
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  return stream.isTTY === true && env.TERM !== "dumb";
}

export function palette(enabled: boolean): Palette {
  return enabled
    ? {
        green: sgr(32, 39),
        red: sgr(31, 39),
        yellow: sgr(33, 39),
        cyan: sgr(36, 39),
        dim: sgr(2, 22),
        bold: sgr(1, 22),
      }
    : { green: plain, red: plain, yellow: plain, cyan: plain, dim: plain, bold: plain };
}

/**
 * Where the CLI writes: lines and JSON to stdout, complaints to stderr, and on a terminal a
 * status line kept under the last line (redrawn in place). Piped, there is no status line, no
 * cursor movement and no colour: one plain line per change.
 */
export class Output {
  readonly colour: Palette;
  readonly tty: boolean;
  private statusText = "";

  constructor(
    private readonly stdout: Writable & { isTTY?: boolean; columns?: number },
    private readonly stderr: Writable,
    env: NodeJS.ProcessEnv,
  ) {
    this.tty = stdout.isTTY === true;
    this.colour = palette(colourWanted(stdout, env));
  }

  line(text = ""): void {
    this.hideStatus();
    this.stdout.write(`${text}\n`);
    this.showStatus();
  }

  json(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  error(text: string): void {
    this.hideStatus();
    this.stderr.write(`${text}\n`);
    this.showStatus();
  }

  /** The status line (terminal only); an empty text removes it. */
  status(text: string): void {
    if (!this.tty) return;
    this.hideStatus();
    const width = Math.max(20, (this.stdout.columns ?? 80) - 1);
    this.statusText = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.showStatus();
  }

  private hideStatus(): void {
    if (this.tty && this.statusText) this.stdout.write("\r\x1b[2K");
  }

  private showStatus(): void {
    if (this.tty && this.statusText) this.stdout.write(this.colour.dim(this.statusText));
  }

  /** Resolves once stdout and stderr have handed everything to the OS (before `process.exit`). */
  async flush(): Promise<void> {
    this.status("");
    await Promise.all(
      [this.stdout, this.stderr].map((s) => new Promise<void>((resolve) => s.write("", () => resolve()))),
    );
  }
}
