import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig, type PgtwinConfig, type ResolvedConfig } from 'pgtwin';
import { SERVER_URL } from './databases.js';

const server = new URL(SERVER_URL);

/** The test server's address as config fields. */
export const SERVER = {
  host: server.hostname,
  port: Number(server.port || 5432),
  user: decodeURIComponent(server.username),
};

/**
 * A resolved configuration for a test: production, test and admin on the test server, nothing read from the
 * real environment or any file, `overrides` on top.
 */
export function testConfig(
  overrides: PgtwinConfig & { env?: Record<string, string> } = {},
): Promise<ResolvedConfig> {
  const { env = {}, ...config } = overrides;
  return resolveConfig({
    rootDir: mkdtempSync(path.join(tmpdir(), 'pgtwin-test-')),
    configFile: false,
    env,
    ...config,
    production: { ...SERVER, ...config.production },
    test: { ...SERVER, ...config.test },
    admin: { ...SERVER, database: 'postgres', ...config.admin },
  });
}

/** A temporary project directory holding `files` (name → content), e.g. a `pgtwin.config.json`. */
export function configProject(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgtwin-config-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  return dir;
}
