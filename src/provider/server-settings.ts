/**
 * Settings every server pgtwin starts itself (embedded or container) runs with, as `-c` arguments: a test
 * twin is rebuilt from production at will, so durability is traded for speed.
 */
export const SERVER_SETTINGS: readonly string[] = Object.freeze([
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
]);

/** `['-c', 'fsync=off', '-c', …]`: {@link SERVER_SETTINGS} as command-line arguments of `postgres`. */
export function serverSettingArgs(): string[] {
  return SERVER_SETTINGS.flatMap((setting) => ['-c', setting]);
}
