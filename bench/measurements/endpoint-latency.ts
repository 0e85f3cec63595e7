import pg from 'pg';
import { enableIsolation, exemptFromIsolation } from '../../src/isolation/index.js';
import { cloneTemplate } from '../../src/provision/template-store.js';
import { databaseUrl, round, SERVER, type BenchContext } from '../bench-context.js';
import type { EndpointResult } from '../results.js';
import { startRoundTripProxy, type RoundTripProxy } from '../round-trip-proxy.js';

const STATEMENTS = 2_000;
const FAILING = 300;

/**
 * What the wire endpoint adds to a statement, against the same node-postgres client on a direct connection:
 * time per statement and round trips on the server's side (counted by a proxy in front of the server), for
 * statements that succeed and for statements that fail. Both run autocommit, one statement at a time, on a
 * fresh clone of the template; the endpoint's inside a test.
 */
export async function measureEndpointLatency(ctx: BenchContext): Promise<EndpointResult> {
  await cloneTemplate(ctx.config, ctx.template, ctx.names.test);
  const proxy = await startRoundTripProxy(SERVER);
  const url = Object.assign(new URL(databaseUrl(ctx.names.test)), { port: String(proxy.port) }).toString();
  try {
    const direct = exemptFromIsolation(new pg.Client({ connectionString: url }));
    await direct.connect();
    const directRun = await run(direct, proxy);
    await direct.end();

    const isolation = await enableIsolation({ connectionString: url, endpoint: true, detectLeaks: false });
    const endpointUrl = Object.assign(new URL(url), {
      hostname: isolation.endpoint!.host,
      port: String(isolation.endpoint!.port),
    }).toString();
    const wire = exemptFromIsolation(new pg.Client({ connectionString: endpointUrl }));
    await wire.connect();
    // A second client with settings of its own: alternating with the first, every statement switches.
    const other = exemptFromIsolation(
      new pg.Client({
        connectionString: endpointUrl,
        application_name: 'bench-other',
        options: '-c search_path=public,pg_catalog -c TimeZone=Asia/Tokyo',
      }),
    );
    await other.connect();
    await isolation.begin();
    const endpointRun = await run(wire, proxy);
    const switchingRun = await run(alternating(wire, other), proxy);
    await isolation.rollback();
    await wire.end();
    await other.end();
    await isolation.close();

    const result: EndpointResult = {
      statements: STATEMENTS,
      failingStatements: FAILING,
      directMsPerStatement: round(directRun.ms, 4),
      endpointMsPerStatement: round(endpointRun.ms, 4),
      addedMsPerStatement: round(endpointRun.ms - directRun.ms, 4),
      extraRoundTripsPerStatement: round(endpointRun.trips - directRun.trips, 2),
      extraRoundTripsPerFailingStatement: round(endpointRun.failingTrips - directRun.failingTrips, 2),
      switchingMsPerStatement: round(switchingRun.ms, 4),
      extraRoundTripsPerSwitchingStatement: round(switchingRun.trips - directRun.trips, 2),
    };
    ctx.log(`endpoint: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await proxy.close();
  }
}

/** A client whose queries go to `a` and `b` in turn. */
function alternating(a: pg.Client, b: pg.Client): pg.Client {
  let turn = 0;
  const query = (...args: unknown[]) =>
    ((turn++ % 2 === 0 ? a : b).query as (...args: unknown[]) => unknown)(...args);
  return { query } as unknown as pg.Client;
}

/** Time and server round trips per statement on `client`: successful ones, then failing ones. */
async function run(client: pg.Client, proxy: RoundTripProxy) {
  const statement = (i: number) =>
    client.query('SELECT id, name FROM public.clients WHERE slug = $1', [`bench-${i}`]);
  for (let i = 0; i < 200; i++) await statement(i); // warm-up
  proxy.reset();
  const started = performance.now();
  for (let i = 0; i < STATEMENTS; i++) await statement(i);
  const ms = (performance.now() - started) / STATEMENTS;
  const trips = proxy.turns() / STATEMENTS;
  proxy.reset();
  for (let i = 0; i < FAILING; i++) await client.query('SELECT 1 / $1::int', [0]).catch(() => undefined);
  return { ms, trips, failingTrips: proxy.turns() / FAILING };
}
