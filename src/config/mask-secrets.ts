/** What pgtwin prints in place of a password, everywhere. */
export const MASK = '*****';

// A URL up to the next whitespace: a raw password may hold `@`, `:` or `/`, so the userinfo ends at the
// token's LAST `@`, and everything after the first `:` in it is the password.
const URL_TOKEN = /\b([a-z][a-z0-9+.-]*:\/\/)(\S*)/gi;
// `password=...`, `PGPASSWORD=...`, `DB_PASS=...`, `"password": "..."`, `password: '...'`.
const KEY_VALUE_PASSWORD =
  /((["']?)\b(?:\w*_|pg)?pass(?:word|wd)?\2\s*[=:]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"']+)/gi;

/**
 * Hides the password of a value meant as a connection URL, even one too broken to parse (`not a url:pw@`):
 * everything after the first `:` of the userinfo, which ends at the last `@`.
 *
 * @example
 * maskUrl('postgres://user:p@ss@#:/?%@127.0.0.1/db') // 'postgres://user:*****@127.0.0.1/db'
 */
export function maskUrl(value: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value)?.[0] ?? '';
  return maskSecrets(scheme + maskUserinfo(value.slice(scheme.length)));
}

/** `user:password@rest` → `user:*****@rest`, the userinfo ending at the last `@`. */
function maskUserinfo(rest: string): string {
  const at = rest.lastIndexOf('@');
  if (at === -1) return rest;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon === -1) return rest;
  return `${userinfo.slice(0, colon)}:${MASK}${rest.slice(at)}`;
}

/**
 * Hides passwords in free text: the password part of connection URLs (however it is spelled, raw `@`, `:` or
 * `/` included, valid URL or not), `password=...` / `PGPASSWORD=...` / `DB_PASS=...` pairs, JSON
 * `"password": "..."` and YAML-style `password: '...'`, and every literal secret given. Applied to every line
 * pgtwin logs and every error message it builds from foreign text (driver errors can quote a connection string).
 *
 * @example
 * maskSecrets('postgres://app:s3cret@db/x') // 'postgres://app:*****@db/x'
 * maskSecrets('postgres://app:p@ss:w/rd@db/x') // 'postgres://app:*****@db/x'
 */
export function maskSecrets(text: string, secrets: Iterable<string> = []): string {
  let out = text.replace(URL_TOKEN, (_match, scheme: string, rest: string) => scheme + maskUserinfo(rest));
  out = out.replace(KEY_VALUE_PASSWORD, (_match, key: string, _quote: string, value: string) => {
    const quote = value.startsWith('"') || value.startsWith("'") ? value[0] : '';
    return `${key}${quote}${MASK}${quote}`;
  });
  for (const secret of secrets) {
    // Very short secrets would mask ordinary words; they are still never printed by pgtwin itself.
    if (secret.length >= 3) out = out.split(secret).join(MASK);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret && encoded.length >= 3) out = out.split(encoded).join(MASK);
  }
  return out;
}
