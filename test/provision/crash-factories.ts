import { writeSync } from 'node:fs';
import { Factory } from 'fishery';

/** The line a held seed writes to stderr before it stops, so the parent knows the seed is under way. */
export const SEED_HELD = 'crash-test: seed held';

/** A client row; with `CRASH_HOLD_SEED=1` building one stops the process for good, inside the seed's transaction. */
interface Client {
  name: string;
  slug: string;
  email: string;
}

/**
 * The factories module of crash-recovery.test.ts. Building a row blocks the event loop (the seed builds its
 * rows inside its transaction, before inserting them), so a kill lands during the seed, deterministically.
 */
export const factories = {
  client: Factory.define<Client>(({ sequence }) => {
    if (process.env.CRASH_HOLD_SEED === '1') {
      writeSync(2, `${SEED_HELD}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
    return { name: `Client ${sequence}`, slug: `client-${sequence}`, email: `c${sequence}@crash.test` };
  }),
};
