// The main job, end to end on the configured server: resolve the configuration, provision the test
// database and its role, and show the production guard refusing to touch production.
import {
  dropTestDatabase,
  provisionTestDatabase,
  resolveConfig,
  createLogger,
  ProductionGuardError,
} from '../dist/index.js';

const config = await resolveConfig();
const log = createLogger({
  secrets: [config.production.password, config.test.password, config.admin.password],
});
log.info(`production ${config.production.url()} (read-only), test ${config.test.url()}`);
const started = performance.now();
const result = await provisionTestDatabase(config, { logger: log });
log.info(
  `provision ${Math.round(performance.now() - started)} ms: ${result.changes.join('; ') || 'already in place'}`,
);

const guarded = await resolveConfig({
  test: { database: config.production.database, host: config.production.host },
});
try {
  await dropTestDatabase(guarded);
  log.warn('the guard did not refuse to drop production');
  process.exitCode = 1;
} catch (error) {
  if (!(error instanceof ProductionGuardError)) throw error;
  log.info(`guard: ${error.message.split(':')[0]} (refused as expected)`);
}
