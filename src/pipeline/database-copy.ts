import { randomBytes } from 'node:crypto';
import { currentRun } from '../guard/test-marker.js';
import { TwinDatabases } from '../provision/twin-databases.js';
import { markOptedOut } from './clean-run-watch.js';
import { targetFields, workerConfig, type TargetFields, type TwinHandoff } from './worker-handoff.js';

/**
 * Creates a fresh copy of the prepared test database (from the run's template), for tests whose writes must
 * commit. Named after the test database, unique to this process; stamped as a scratch database of the run
 * that prepared the template, so its run lock keeps it from other runs' cleanup and `gc` on any host.
 */
export async function createDatabaseCopy(handoff: TwinHandoff): Promise<TargetFields> {
  const config = await workerConfig(handoff);
  const name = `${config.test.database.slice(0, 40)}_copy_${process.pid}_${randomBytes(3).toString('hex')}`;
  return TwinDatabases.use(config, async (databases) => {
    const copy = await databases.copy(handoff.template, name, {
      kind: 'scratch',
      run: handoff.run ?? currentRun(),
    });
    // The run's test database cannot be left "clean" for the next run: these tests commit.
    await markOptedOut(databases, handoff.test.database);
    return targetFields(copy);
  });
}

/** Drops a copy made by {@link createDatabaseCopy}, through the production guard. */
export async function dropDatabaseCopy(handoff: TwinHandoff, copy: TargetFields): Promise<void> {
  const config = await workerConfig(handoff);
  await TwinDatabases.use(config, (databases) => databases.drop(copy.database));
}
