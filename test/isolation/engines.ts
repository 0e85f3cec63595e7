import { testTransaction } from 'pg-transactional-tests';
import { enableIsolation, type Isolation } from '../../src/isolation/index.js';
import { PGTWIN_WAIT_TIMEOUT_MS } from './deadlines.js';

/** A per-test isolation implementation the conformance suite can run against. */
export interface IsolationEngine {
  readonly name: EngineName;
  setup(url: string): Promise<void>;
  /** Where an application client connects: the test database's URL, or what the engine hands out instead. */
  clientUrl(url: string): string;
  beginTest(): Promise<void>;
  endTest(): Promise<void>;
  teardown(): Promise<void>;
}

export type EngineName = 'pgtwin' | 'pg-transactional-tests';

/** The engine named by `PGTWIN_ISOLATION_ENGINE` (default `pgtwin`). */
export function selectEngine(): IsolationEngine {
  const name = process.env.PGTWIN_ISOLATION_ENGINE ?? 'pgtwin';
  if (name === 'pgtwin') return pgtwinEngine();
  if (name === 'pg-transactional-tests') return transactionalTestsEngine();
  throw new Error(`PGTWIN_ISOLATION_ENGINE must be "pgtwin" or "pg-transactional-tests", not "${name}".`);
}

function pgtwinEngine(): IsolationEngine {
  let isolation: Isolation | undefined;
  return {
    name: 'pgtwin',
    async setup(url) {
      isolation = await enableIsolation({
        connectionString: url,
        waitTimeoutMs: PGTWIN_WAIT_TIMEOUT_MS,
        detectLeaks: false,
        endpoint: true,
      });
    },
    clientUrl(url) {
      const target = new URL(url);
      target.hostname = isolation!.endpoint!.host;
      target.port = String(isolation!.endpoint!.port);
      return target.toString();
    },
    beginTest: async () => isolation?.begin(),
    endTest: async () => isolation?.rollback(),
    teardown: async () => void (await isolation?.close()),
  };
}

function transactionalTestsEngine(): IsolationEngine {
  return {
    name: 'pg-transactional-tests',
    setup: async () => testTransaction.start(),
    clientUrl: (url) => url,
    beginTest: async () => testTransaction.start(),
    endTest: () => testTransaction.rollback(),
    teardown: () => testTransaction.close(),
  };
}
