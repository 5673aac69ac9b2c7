import { nonRetryable } from "../errors";

/**
 * SSRF defences for `http_get` (OWASP API7): https only, a host on the configured allowlist, no
 * IP literals in any notation, no userinfo, no port but the default. Applied to the first URL
 * and again to every redirect target.
 */
export function parseAllowlist(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h.length > 0);
}

// IPv4 in dotted, decimal, octal or hex notation ("127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1").
const looksNumeric = (host: string) => host.split(".").every((part) => /^(0x[0-9a-f]{0,8}|[0-9]{1,12})$/i.test(part));

export function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith("[") || hostname.includes(":") || looksNumeric(hostname);
}

function allowed(host: string, allowlist: readonly string[]): boolean {
  return allowlist.some((entry) =>
    entry.startsWith("*.") ? host.endsWith(entry.slice(1)) && host.length > entry.length - 1 : host === entry,
  );
}

/** The URL, normalised, if the policy allows it; otherwise a non-retried error that says why. */
export function checkUrl(raw: string, allowlist: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    if (err instanceof TypeError) throw nonRetryable(`'${raw.slice(0, 200)}' is not a valid URL`, "bad_url");
    throw err;
  }
  if (url.protocol !== "https:") throw nonRetryable(`Only https URLs are allowed, not ${url.protocol}`, "bad_url");
  if (url.username || url.password) throw nonRetryable("URLs with credentials (user:pass@) are not allowed", "bad_url");
  if (url.port !== "") throw nonRetryable(`Only the default https port is allowed, not ${url.port}`, "bad_url");
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (isIpLiteral(host)) throw nonRetryable("IP address literals are not allowed; use a host name", "bad_url");
  if (!allowed(host, allowlist)) {
    throw nonRetryable(`Host '${host}' is not on the http_get allowlist (HTTP_GET_ALLOWLIST)`, "host_not_allowed");
  }
  return url;
}
