/** A status as colour *and* text, so it reads without colour too. */
export function Status({ status, label }: { status: string; label?: string }) {
  return (
    <span className={`status status-${status}`} data-status={status}>
      <span className="dot" aria-hidden="true" />
      {label ?? status.replace("_", " ")}
    </span>
  );
}
