import { randomBytes } from 'node:crypto';
import { DatabaseTarget } from '../config/database-target.js';
import { connect } from '../connection/connect.js';
import { guardDestructive } from '../guard/production-guard.js';
import { newMarker, writeMarker } from '../guard/test-marker.js';
import { targetFields, workerConfig, type TargetFields, type TwinHandoff } from './worker-handoff.js';

/**
 * Creates a fresh copy of the prepared test database (from the run's template), for tests whose writes must
 * commit. Named after the test database, unique to this process; stamped as a pgtwin scratch database.
 */
export async function createDatabaseCopy(handoff: TwinHandoff): Promise<TargetFields> {
  const config = await workerConfig(handoff);
  const name = `${config.test.database.slice(0, 40)}_copy_${process.pid}_${randomBytes(3).toString('hex')}`;
  const copy = config.test.withDatabase(name);
  const admin = await connect(config.admin, 'admin');
  try {
    await guardDestructive({
      config,
      target: copy,
      operation: 'create',
      serverClient: admin,
      creating: true,
    });
    await admin.query(
      `CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(handoff.template)} OWNER ${admin.escapeIdentifier(config.test.user)}`,
    );
    await writeMarker(admin, name, newMarker('scratch'));
  } finally {
    await admin.end();
  }
  return targetFields(copy);
}

/** Drops a copy made by {@link createDatabaseCopy}, through the production guard. */
export async function dropDatabaseCopy(handoff: TwinHandoff, copy: TargetFields): Promise<void> {
  const config = await workerConfig(handoff);
  const target = new DatabaseTarget(copy);
  const admin = await connect(config.admin, 'admin');
  try {
    await guardDestructive({ config, target, operation: 'drop', serverClient: admin });
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(copy.database)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
