import { formatDuration } from "../src/client/duration";

/** `850 ms`, `4.2 s`, `3 min 5 s`, `2 h 10 min` (`formatDuration`); `-` for none. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  return formatDuration(ms);
}

/** Milliseconds between two ISO timestamps, or null. */
export function between(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from || !to) return null;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) ? ms : null;
}

// C0 controls but tab and newline, DEL, the C1 controls (U+0080–U+009F: 0x9b is a CSI on its own),
// the line and paragraph separators, and the bidirectional embeddings, overrides and isolates
// (U+202A–U+202E, U+2066–U+2069), which make a terminal show text in another order than it reads.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]/g;

/**
 * Text from the server made safe to print on a terminal: every control character but newline and
 * tab is shown as its JSON escape (ESC as `\u001b`), so a step's error, a reject reason or a prompt
 * cannot move the cursor, clear the screen, retitle the window, ring the bell or reorder what is
 * shown (bidi overrides such as U+202E). Only for human
 * output: `--json` prints the server's text exactly.
 *
 * @example printable("\u001b[2Jhi") // "\\u001b[2Jhi"
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A JSON value on one line, cut to `max` characters (code points: never half a surrogate pair). Strings print bare. */
export function compact(value: unknown, max = 80): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  const oneLine = printable((text ?? "null").replace(/\s+/g, " "));
  const chars = [...oneLine];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : oneLine;
}

/** A JSON value as the result is shown: strings and numbers bare, the rest indented JSON; printable either way. */
export function pretty(value: unknown): string {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return printable(String(value));
  }
  return printable(JSON.stringify(value, null, 2) ?? "null");
}

// Colour codes take no room on screen.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
const visibleLength = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "").length;

export function pad(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - visibleLength(text)));
}

/** Rows under a header, columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** `2026-11-26 19:29:18` (UTC, as stored) from an ISO timestamp. */
export function when(iso: string | null | undefined): string {
  return typeof iso === "string" && iso ? printable(iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "")) : "-";
}
