/**
 * A duration as people read it — `850 ms`, `4.2 s`, `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h` —
 * rounded once, to the precision shown, so that no unit overflows (`60 s` is `1 min 0 s`, never
 * `1 min 60 s`). Shared by the console and the CLI.
 */
export function formatDuration(ms: number): string {
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
