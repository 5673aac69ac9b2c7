/**
 * A listing's cursor: the position of its last row as base64url JSON, opaque to clients.
 * `GET /runs` and `GET /approvals` each keep their own position fields and check them.
 */
export const toCursor = (position: object): string =>
  btoa(JSON.stringify(position)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

/**
 * The object a cursor holds, or null for anything this API did not make: undecodable base64,
 * text that is not JSON, and JSON that is not an object (`null`, a number, an array…) alike.
 */
export function fromCursor(cursor: string): Record<string, unknown> | null {
  let json: unknown;
  try {
    json = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")));
  } catch (err) {
    if (err instanceof SyntaxError || (err instanceof DOMException && err.name === "InvalidCharacterError"))
      return null;
    throw err;
  }
  return json !== null && typeof json === "object" && !Array.isArray(json) ? (json as Record<string, unknown>) : null;
}
