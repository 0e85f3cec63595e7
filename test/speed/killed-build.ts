/**
 * Child process of template.test.ts: starts a template build and never finishes it, so the parent can kill
 * it half-way. Reads the config options (JSON) and fingerprint from the environment.
 */
import { resolveConfig, type ResolveConfigOptions } from '../../src/config/index.js';
import { buildTemplate } from '../../src/provision/template-store.js';

const config = await resolveConfig(JSON.parse(process.env.SPEED_CONFIG!) as ResolveConfigOptions);
await buildTemplate(config, process.env.SPEED_FINGERPRINT!, async (target) => {
  process.stdout.write(`building ${target.database}\n`);
  await new Promise(() => undefined);
});
