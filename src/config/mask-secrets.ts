const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s]*)(@)/gi;
const KEY_VALUE_PASSWORD = /(\bpassword\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s,;]+)/gi;

/**
 * Hides passwords in free text: the password part of connection URLs, `password=...` pairs, and every
 * literal secret given. Applied to every line pgtwin logs and every error message it builds from
 * foreign text (driver errors can quote a connection string).
 *
 * @example
 * maskSecrets('postgres://app:s3cret@db/x') // 'postgres://app:*****@db/x'
 */
export function maskSecrets(text: string, secrets: Iterable<string> = []): string {
  let out = text.replace(URL_PASSWORD, '$1*****$3').replace(KEY_VALUE_PASSWORD, '$1*****');
  for (const secret of secrets) {
    // Very short secrets would mask ordinary words; they are still never printed by pgtwin itself.
    if (secret.length >= 3) out = out.split(secret).join('*****');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret && encoded.length >= 3) out = out.split(encoded).join('*****');
  }
  return out;
}
