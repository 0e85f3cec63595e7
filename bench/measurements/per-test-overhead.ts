import pg from 'pg';
import { enableIsolation } from '../../src/isolation/index.js';
import { cloneTemplate } from '../../src/provision/template-store.js';
import { admin, databaseUrl, inChildProcess, round, SERVER, type BenchContext } from '../bench-context.js';
import {
  ENGINES,
  type CleaningEngine,
  type Engine,
  type IsolationMeasurement,
  type IsolationResult,
} from '../results.js';
import { startRoundTripProxy } from '../round-trip-proxy.js';

const TESTS = 300;
const STATEMENTS = 20;
const CLEANING: readonly CleaningEngine[] = ['pgtwin', 'pg-transactional-tests', 'truncate'];

/**
 * Per-test and per-statement cost of each way to undo a test's writes, against plain pg that undoes
 * nothing; round trips counted by a proxy. Each engine runs in a process of its own (`script isolation
 * <engine> <database>`, see {@link measureIsolationEngine}), since engines patch `pg` globally, on a fresh
 * clone of the template.
 */
export async function measurePerTestOverhead(ctx: BenchContext, script: string): Promise<IsolationResult> {
  const engines: IsolationMeasurement[] = [];
  for (const engine of ENGINES) {
    await cloneTemplate(ctx.config, ctx.template, ctx.names.test);
    engines.push(await inChildProcess<IsolationMeasurement>(script, ['isolation', engine, ctx.names.test]));
    ctx.log(`isolation ${engine}: ${JSON.stringify(engines.at(-1))}`);
  }
  const by = Object.fromEntries(engines.map((m) => [m.engine, m])) as Record<Engine, IsolationMeasurement>;
  const perTest = (e: Engine) => by[e].msPerTest.one - by.raw.msPerTest.one;
  const perStatement = (e: Engine) =>
    (by[e].msPerTest.many - by[e].msPerTest.one - (by.raw.msPerTest.many - by.raw.msPerTest.one)) /
    (STATEMENTS - 1);
  const extraTrips = (e: Engine) => (by[e].tripsPerTest.many - by[e].tripsPerTest.one) / (STATEMENTS - 1) - 1;
  const each = <E extends Engine>(list: readonly E[], fn: (e: E) => number, digits: number) =>
    Object.fromEntries(list.map((e) => [e, round(fn(e), digits)])) as Record<E, number>;
  return {
    tests: TESTS,
    statementsPerTest: STATEMENTS,
    engines,
    perTestOverheadMs: each(CLEANING, perTest, 3),
    perStatementOverheadMs: each(CLEANING, perStatement, 3),
    extraRoundTripsPerStatement: each(ENGINES, extraTrips, 2),
  };
}

/** The child's side: `TESTS` tests of 1 and of `STATEMENTS` statements with `engine` on `database`. */
export async function measureIsolationEngine(
  engine: Engine,
  database: string,
): Promise<IsolationMeasurement> {
  const proxy = await startRoundTripProxy(SERVER);
  const url = Object.assign(new URL(databaseUrl(database)), { port: String(proxy.port) }).toString();
  const tables = (
    await admin<{ name: string }>(
      databaseUrl(database),
      `SELECT string_agg(quote_ident(schemaname) || '.' || quote_ident(tablename), ', ') AS name FROM pg_tables
       WHERE schemaname = 'public' OR schemaname LIKE 'project\\_%'`,
    ).catch(() => [{ name: '' }])
  )[0]!.name;
  let begin = async (): Promise<unknown> => undefined;
  let end = async (): Promise<unknown> => undefined;
  let close = async (): Promise<unknown> => undefined;
  if (engine === 'pgtwin') {
    const isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
    begin = () => isolation.begin();
    end = () => isolation.rollback();
    close = () => isolation.close();
  }
  if (engine === 'pg-transactional-tests') {
    const { testTransaction } = await import('pg-transactional-tests');
    await testTransaction.start();
    begin = async () => testTransaction.start();
    end = () => testTransaction.rollback();
    close = () => testTransaction.close();
  }
  const app = new pg.Client({ connectionString: url });
  await app.connect();
  if (engine === 'truncate') {
    const cleaner = new pg.Client({ connectionString: url });
    await cleaner.connect();
    end = () => cleaner.query(`TRUNCATE ${tables} RESTART IDENTITY CASCADE`);
    close = () => cleaner.end();
  }
  const test = async (statements: number) => {
    await begin();
    for (let i = 0; i < statements; i++) {
      if (i % 2 === 0)
        await app.query('INSERT INTO public.clients (name, slug) VALUES ($1, $2)', [
          `bench ${i}`,
          `bench-${i}-${Math.floor(Math.random() * 1e12)}`,
        ]);
      else await app.query('SELECT id, name FROM public.clients WHERE slug = $1', [`bench-${i}`]);
    }
    await end();
  };
  const measure = async (statements: number) => {
    for (let i = 0; i < 20; i++) await test(statements); // warm-up
    proxy.reset();
    const started = performance.now();
    for (let i = 0; i < TESTS; i++) await test(statements);
    return { ms: (performance.now() - started) / TESTS, trips: proxy.count() / TESTS };
  };
  const one = await measure(1);
  const many = await measure(STATEMENTS);
  await close();
  await app.end();
  await proxy.close();
  return {
    engine,
    msPerTest: { one: round(one.ms, 3), many: round(many.ms, 3) },
    tripsPerTest: { one: round(one.trips, 2), many: round(many.trips, 2) },
  };
}
