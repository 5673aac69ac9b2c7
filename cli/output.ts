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
  /** Streams whose reader went away (EPIPE): nothing more is written to them. */
  private readonly gone = new Set<Writable>();

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
    this.write(this.stdout, `${text}\n`);
    this.showStatus();
  }

  json(value: unknown): void {
    this.write(this.stdout, `${JSON.stringify(value, null, 2)}\n`);
  }

  error(text: string): void {
    this.hideStatus();
    this.write(this.stderr, `${text}\n`);
    this.showStatus();
  }

  /**
   * The reader of stdout (`"stdout"`) or stderr went away (`crane watch … | head -1`): later
   * output to it is dropped instead of failing again.
   */
  readerGone(stream: "stdout" | "stderr"): void {
    this.gone.add(stream === "stdout" ? this.stdout : this.stderr);
    if (stream === "stdout") this.statusText = "";
  }

  private write(stream: Writable, text: string): void {
    if (!this.gone.has(stream)) stream.write(text);
  }

  /** The status line (terminal only); an empty text removes it. */
  status(text: string): void {
    if (!this.tty) return;
    this.hideStatus();
    // A terminal that reports 0 columns (some CI pseudo-terminals, a serial console) has an unknown width.
    const width = Math.max(20, (this.stdout.columns || 80) - 1);
    const chars = [...text];
    this.statusText = chars.length > width ? `${chars.slice(0, width - 1).join("")}…` : text;
    this.showStatus();
  }

  private hideStatus(): void {
    if (this.tty && this.statusText) this.write(this.stdout, "\r\x1b[2K");
  }

  private showStatus(): void {
    if (this.tty && this.statusText) this.write(this.stdout, this.colour.dim(this.statusText));
  }

  /** Resolves once stdout and stderr have handed everything to the OS (before `process.exit`). */
  async flush(): Promise<void> {
    this.status("");
    await Promise.all(
      [this.stdout, this.stderr]
        .filter((s) => !this.gone.has(s))
        .map((s) => new Promise<void>((resolve) => s.write("", () => resolve()))),
    );
  }
}
