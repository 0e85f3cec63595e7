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
 * Statements each client runs before the timing starts. V8 optimises the endpoint's per-message code after
 * a few thousand calls (a suite runs that many in its first seconds); with 200, the first timed pass of a
 * run measured 0.10 ms added and later passes of the same run 0.066–0.070 ms.
 */
const WARM_UP = 3_000;

/**
 * What the wire endpoint adds to a statement, against the same node-postgres client on a direct connection,
 * for statements that succeed and for statements that fail. Both run autocommit, one statement at a time, on
 * a fresh clone of the template; the endpoint's inside a test. A plain TCP relay in this process, timed alike,
 * shows the floor: what the extra hop through a Node process costs before the endpoint does anything.
 *
 * Two passes, because the instrument that counts round trips costs time of its own: the timed pass runs on
 * the connections a user has (client to server, client to endpoint to server); the counting pass puts a
 * proxy in front of the server (counting what reaches it) and is not timed. The proxy lives in this process,
 * on the thread that also runs the clients and the endpoint, and it handles every packet the server sends:
 * timed through it, the endpoint's statements (two packets from the server, see the endpoint's Flush) would
 * carry the proxy's work as if it were the endpoint's.
 */
export async function measureEndpointLatency(ctx: BenchContext): Promise<EndpointResult> {
  await cloneTemplate(ctx.config, ctx.template, ctx.names.test);
  const url = databaseUrl(ctx.names.test);
  const counted = await countingPass(url);
  const timed = await timedPass(url);
  const result: EndpointResult = {
    statements: STATEMENTS,
    failingStatements: FAILING,
    directMsPerStatement: round(timed.direct.ms, 4),
    endpointMsPerStatement: round(timed.endpoint.ms, 4),
    addedMsPerStatement: round(pairedDifference(timed.endpoint, timed.direct), 4),
    relayAddedMsPerStatement: round(pairedDifference(timed.relay, timed.direct), 4),
    extraRoundTripsPerStatement: round(counted.endpoint.trips - counted.direct.trips, 2),
    extraRoundTripsPerFailingStatement: round(counted.endpoint.failingTrips - counted.direct.failingTrips, 2),
    switchingMsPerStatement: round(timed.switching.ms, 4),
    extraRoundTripsPerSwitchingStatement: round(counted.switching.trips - counted.direct.trips, 2),
  };
  ctx.log(`endpoint: ${JSON.stringify(result)}`);
  return result;
}

/** The clients of one pass: direct to `url`, and through an endpoint whose test session connects to `url`. */
interface Clients {
  direct: pg.Client;
  wire: pg.Client;
  /** A second endpoint client with settings of its own: alternating with `wire`, every statement switches. */
  other: pg.Client;
}

async function withClients<T>(url: string, use: (clients: Clients) => Promise<T>): Promise<T> {
  const direct = await connected(url);
  const isolation = await enableIsolation({ connectionString: url, endpoint: true, detectLeaks: false });
  const endpointUrl = Object.assign(new URL(url), {
    hostname: isolation.endpoint!.host,
    port: String(isolation.endpoint!.port),
  }).toString();
  const wire = await connected(endpointUrl);
  const other = await connected(endpointUrl, {
    application_name: 'bench-other',
    options: '-c search_path=public,pg_catalog -c TimeZone=Asia/Tokyo',
  });
  try {
    await isolation.begin();
    const result = await use({ direct, wire, other });
    await isolation.rollback();
    return result;
  } finally {
    for (const client of [direct, wire, other]) await client.end();
    await isolation.close();
  }
}

async function connected(url: string, options: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = exemptFromIsolation(new pg.Client({ connectionString: url, ...options }));
  await client.connect();
  return client;
}

async function timedPass(url: string) {
  const relay = await startRelay(new URL(url));
  try {
    const relayed = await connected(Object.assign(new URL(url), { port: String(relay.port) }).toString());
    try {
      return await withClients(url, async ({ direct, wire, other }) => {
        const [directRun, relayRun, endpointRun] = await runInTurns([direct, relayed, wire] as const);
        const [switchingRun] = await runInTurns([alternating(wire, other)] as const);
        return { direct: directRun, relay: relayRun, endpoint: endpointRun, switching: switchingRun };
      });
    } finally {
      await relayed.end();
    }
  } finally {
    relay.close();
  }
}

/** Round trips reaching the server per statement, successful and failing, counted by a proxy in front of it. */
async function countingPass(url: string) {
  const proxy = await startRoundTripProxy(SERVER);
  try {
    const proxied = Object.assign(new URL(url), { port: String(proxy.port) }).toString();
    return await withClients(proxied, async ({ direct, wire, other }) => ({
      direct: await countTrips(direct, proxy),
      endpoint: await countTrips(wire, proxy),
      switching: await countTrips(alternating(wire, other), proxy),
    }));
  } finally {
    await proxy.close();
  }
}

const COUNTED = 200;

async function countTrips(
  client: pg.Client,
  proxy: RoundTripProxy,
): Promise<{ trips: number; failingTrips: number }> {
  for (let i = 0; i < 20; i++) await statement(client, i);
  proxy.reset();
  for (let i = 0; i < COUNTED; i++) await statement(client, i);
  const trips = proxy.turns() / COUNTED;
  proxy.reset();
  for (let i = 0; i < FAILING; i++) await client.query('SELECT 1 / $1::int', [0]).catch(() => undefined);
  return { trips, failingTrips: proxy.turns() / FAILING };
}

const statement = (client: pg.Client, i: number) =>
  client.query('SELECT id, name FROM public.clients WHERE slug = $1', [`bench-${i}`]);

/** A TCP relay to the server at `target` in this process that passes the bytes on as they come. */
async function startRelay(target: URL): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ port: Number(target.port || 5432), host: target.hostname, noDelay: true });
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
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

/** Time per statement on one client: the median block's, and each block's in turn order. */
interface Run {
  ms: number;
  blocks: number[];
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

/** Time per statement on each client, the clients taking turns in {@link BLOCKS} blocks. */
async function runInTurns<T extends readonly pg.Client[]>(clients: T): Promise<{ [K in keyof T]: Run }> {
  for (const client of clients) for (let i = 0; i < WARM_UP; i++) await statement(client, i);
  const perBlock = STATEMENTS / BLOCKS;
  const blocks = clients.map(() => [] as number[]);
  for (let block = 0; block < BLOCKS; block++) {
    for (const [index, client] of clients.entries()) {
      const started = performance.now();
      for (let i = 0; i < perBlock; i++) await statement(client, i);
      blocks[index]!.push((performance.now() - started) / perBlock);
    }
  }
  return blocks.map((times) => ({
    ms: [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!,
    blocks: times,
  })) as { [K in keyof T]: Run };
}
