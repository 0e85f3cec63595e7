import net from 'node:net';
import pg from 'pg';
import { enableIsolation, exemptFromIsolation } from '../../src/isolation/index.js';
import { cloneTemplate } from '../../src/provision/template-store.js';
import { databaseUrl, round, SERVER, type BenchContext } from '../bench-context.js';
import type { EndpointResult } from '../results.js';
import { startRoundTripProxy, type RoundTripProxy } from '../round-trip-proxy.js';

const STATEMENTS = 2_000;
/** The statements run in blocks, the connections taking turns, so a slower moment of the machine hits each alike. */
const BLOCKS = 20;
const FAILING = 300;

/**
 * What the wire endpoint adds to a statement, against the same node-postgres client on a direct connection:
 * time per statement and round trips on the server's side (counted by a proxy in front of the server), for
 * statements that succeed and for statements that fail. Both run autocommit, one statement at a time, on a
 * fresh clone of the template; the endpoint's inside a test. A plain TCP relay in this process, timed alike,
 * shows the floor: what the extra hop through a Node process costs before the endpoint does anything.
 */
export async function measureEndpointLatency(ctx: BenchContext): Promise<EndpointResult> {
  await cloneTemplate(ctx.config, ctx.template, ctx.names.test);
  const proxy = await startRoundTripProxy(SERVER);
  const url = Object.assign(new URL(databaseUrl(ctx.names.test)), { port: String(proxy.port) }).toString();
  const relay = await startRelay(proxy.port);
  try {
    const direct = exemptFromIsolation(new pg.Client({ connectionString: url }));
    await direct.connect();
    const relayed = exemptFromIsolation(
      new pg.Client({
        connectionString: Object.assign(new URL(url), { port: String(relay.port) }).toString(),
      }),
    );
    await relayed.connect();

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
    const [directRun, relayRun, endpointRun] = await runInTurns([direct, relayed, wire] as const, proxy);
    const [switchingRun] = await runInTurns([alternating(wire, other)] as const, proxy);
    await isolation.rollback();
    for (const client of [direct, relayed, wire, other]) await client.end();
    await isolation.close();

    const result: EndpointResult = {
      statements: STATEMENTS,
      failingStatements: FAILING,
      directMsPerStatement: round(directRun.ms, 4),
      endpointMsPerStatement: round(endpointRun.ms, 4),
      addedMsPerStatement: round(pairedDifference(endpointRun, directRun), 4),
      relayAddedMsPerStatement: round(pairedDifference(relayRun, directRun), 4),
      extraRoundTripsPerStatement: round(endpointRun.trips - directRun.trips, 2),
      extraRoundTripsPerFailingStatement: round(endpointRun.failingTrips - directRun.failingTrips, 2),
      switchingMsPerStatement: round(switchingRun.ms, 4),
      extraRoundTripsPerSwitchingStatement: round(switchingRun.trips - directRun.trips, 2),
    };
    ctx.log(`endpoint: ${JSON.stringify(result)}`);
    return result;
  } finally {
    relay.close();
    await proxy.close();
  }
}

/** A TCP relay to `port` in this process that passes the bytes on as they come. */
async function startRelay(port: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ port, host: SERVER.host, noDelay: true });
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, SERVER.host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** A client whose queries go to `a` and `b` in turn. */
function alternating(a: pg.Client, b: pg.Client): pg.Client {
  let turn = 0;
  const query = (...args: unknown[]) =>
    ((turn++ % 2 === 0 ? a : b).query as (...args: unknown[]) => unknown)(...args);
  return { query } as unknown as pg.Client;
}

/**
 * Time and server round trips per statement on each client, the clients taking turns in {@link BLOCKS}
 * blocks (time: the median block; `blocks`: each block's, in turn order); then round trips per failing
 * statement.
 */
interface Run {
  ms: number;
  blocks: number[];
  trips: number;
  failingTrips: number;
}

/**
 * What `run` adds per statement over `base`: the median of the blocks' differences, each block of `run` taken
 * against the block of `base` run just before it, so a slower moment of the machine (which lasts longer than
 * a block) cancels out rather than landing on one side.
 */
function pairedDifference(run: Run, base: Run): number {
  const differences = run.blocks.map((ms, block) => ms - base.blocks[block]!).sort((a, b) => a - b);
  return differences[Math.floor(differences.length / 2)]!;
}

async function runInTurns<T extends readonly pg.Client[]>(
  clients: T,
  proxy: RoundTripProxy,
): Promise<{ [K in keyof T]: Run }> {
  const statement = (client: pg.Client, i: number) =>
    client.query('SELECT id, name FROM public.clients WHERE slug = $1', [`bench-${i}`]);
  for (const client of clients) for (let i = 0; i < 200; i++) await statement(client, i); // warm-up
  const perBlock = STATEMENTS / BLOCKS;
  const blocks = clients.map(() => [] as number[]);
  const trips = clients.map(() => 0);
  for (let block = 0; block < BLOCKS; block++) {
    for (const [index, client] of clients.entries()) {
      proxy.reset();
      const started = performance.now();
      for (let i = 0; i < perBlock; i++) await statement(client, i);
      blocks[index]!.push((performance.now() - started) / perBlock);
      trips[index]! += proxy.turns();
    }
  }
  const results: Run[] = [];
  for (const [index, client] of clients.entries()) {
    proxy.reset();
    for (let i = 0; i < FAILING; i++) await client.query('SELECT 1 / $1::int', [0]).catch(() => undefined);
    const sorted = [...blocks[index]!].sort((a, b) => a - b);
    results.push({
      ms: sorted[Math.floor(sorted.length / 2)]!,
      blocks: blocks[index]!,
      trips: trips[index]! / STATEMENTS,
      failingTrips: proxy.turns() / FAILING,
    });
  }
  return results as { [K in keyof T]: Run };
}
