import type { ResolvedConfig } from '../config/resolve-config.js';
import type { StartedServer } from './started-server.js';

/**
 * A copy of `config` whose `test` and `admin` point at `server`, whose `provider` is the one actually used,
 * and whose `sources` say the addresses came from it, so every later step (provisioning, cloning, the
 * presets) runs unchanged on whatever server {@link startServer} gave. `config` itself is left as it is.
 *
 * @example
 * ```ts
 * const server = await startServer(config);
 * await provisionTestDatabase(withServer(config, server));
 * ```
 */
export function withServer(config: ResolvedConfig, server: StartedServer): ResolvedConfig {
  const sources: Record<string, string> = { ...config.sources };
  if (server.provider !== 'server') {
    const from = `provider ${server.provider}`;
    for (const field of ['host', 'port']) sources[`test.${field}`] = from;
    for (const field of ['host', 'port', 'database', 'user', 'password']) sources[`admin.${field}`] = from;
  }
  return Object.freeze({
    ...config,
    provider: server.provider,
    test: server.test,
    admin: server.admin,
    sources: Object.freeze(sources),
  });
}
