import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseTarget, ResolvedConfig } from '../../src/config/index.js';
import { connect } from '../../src/connection/connect.js';
import { computeFingerprint } from '../../src/provision/twin-fingerprint.js';
import { templateName } from '../../src/provision/template-locks.js';
import {
  buildTemplate,
  cloneTemplate,
  dropTemplate,
  ensureTemplate,
  findTemplate,
} from '../../src/provision/template-store.js';
import { tableChecksums } from '../../src/mirror/index.js';
import { gc } from '../../src/provision/gc.js';
import { databaseUrl } from '../helpers/databases.js';
import { sourceScript } from '../helpers/source-script.js';
import { writeMarker, type TestMarker } from '../../src/guard/test-marker.js';
import { databaseState, dropAfterAll, readSources, speedProject, twinBuilder } from './speed-fixture.js';
import pg from 'pg';

const created = new Set<string>();
dropAfterAll(() => created);

let config: ResolvedConfig;
let fingerprint: string;

beforeAll(async () => {
  const project = await speedProject('tpl');
  config = project.config;
  created.add(project.production);
  fingerprint = await computeFingerprint(config, await readSources(config));
  created.add(templateName(fingerprint));
});

/** A fingerprint of its own per test, so tests do not share templates. */
function freshFingerprint(label: string): string {
  const fp = createHash('sha256')
    .update(label + fingerprint)
    .digest('hex');
  created.add(templateName(fp));
  return fp;
}

/** A build that only marks the database: for tests about the cache's life cycle rather than its contents. */
function lightBuilder(calls: { count: number } = { count: 0 }) {
  return async (target: DatabaseTarget) => {
    calls.count++;
    const client = new pg.Client(target.clientConfig());
    await client.connect();
    await client.query('CREATE TABLE built (at timestamptz DEFAULT now())');
    await client.end();
  };
}

async function checksumsOf(database: string) {
  const client = new pg.Client({ connectionString: databaseUrl(database) });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT schemaname || '.' || tablename AS name FROM pg_tables WHERE schemaname = 'public' OR schemaname LIKE 'project\\_%' ORDER BY 1`,
    );
    return await tableChecksums(
      client,
      rows.map((row) => row.name),
    );
  } finally {
    await client.end();
  }
}

describe('template cache', () => {
  it('builds once, then a second run reuses the template and its clones hold the same contents', async () => {
    const calls = { count: 0 };
    const first = await ensureTemplate(config, fingerprint, twinBuilder(config, calls));
    await first.release();
    const second = await ensureTemplate(config, fingerprint, twinBuilder(config, calls));
    await second.release();
    expect([first.built, second.built, calls.count]).toEqual([true, false, 1]);
    expect(await databaseState(first.template)).toBe('template');
    const admin = await connect(config.admin, 'admin');
    expect((await findTemplate(admin, fingerprint))?.marker).toMatchObject({ kind: 'template', fingerprint });
    await admin.end();

    const a = config.test.database + '_a';
    const b = config.test.database + '_b';
    created.add(a).add(b);
    await cloneTemplate(config, first.template, a);
    await cloneTemplate(config, first.template, b, { strategy: 'WAL_LOG' });
    const sums = await checksumsOf(a);
    expect(sums['public.prompts']!.rowCount).toBeGreaterThan(0);
    expect(sums['public.clients']!.rowCount).toBe(1); // seeded
    expect(await checksumsOf(b)).toEqual(sums);
  });

  it('rebuilds when asked to (PGTWIN_REBUILD=1) even though the template exists', async () => {
    const fp = freshFingerprint('rebuild');
    const calls = { count: 0 };
    await (await ensureTemplate(config, fp, lightBuilder(calls))).release();
    const lease = await ensureTemplate(config, fp, lightBuilder(calls), { rebuild: true });
    await lease.release();
    expect(lease.built).toBe(true);
    expect(calls.count).toBe(2);
    expect(await databaseState(templateName(fp))).toBe('template');
  });

  it('builds while the fingerprint is still being read, and publishes and leases the template under it', async () => {
    const fp = freshFingerprint('ahead');
    let resolve!: (value: string) => void;
    const reading = new Promise<string>((done) => (resolve = done));
    let building = '';
    const build = lightBuilder();
    const leasing = ensureTemplate(config, reading, async (target) => {
      building = target.database;
      await build(target);
      // The build ran before the fingerprint was known; it is put in place only once it is.
      expect(await databaseState(templateName(fp))).toBe('missing');
      resolve(fp);
    });
    const lease = await leasing;
    try {
      expect(lease).toMatchObject({ template: templateName(fp), fingerprint: fp, built: true });
      expect(building).toMatch(/^pgtwin_wip_[0-9a-f]{16}$/);
      expect(await databaseState(templateName(fp))).toBe('template');
      // Leased: not dropped while this run holds it.
      expect(await dropTemplate(config, templateName(fp))).toBe(false);
    } finally {
      await lease.release();
    }
  });

  it('discards a build ahead of its fingerprint when that template is already published, and reuses it', async () => {
    const fp = freshFingerprint('ahead-published');
    const calls = { count: 0 };
    await (await ensureTemplate(config, fp, lightBuilder(calls))).release();
    let building = '';
    const build = lightBuilder(calls);
    const lease = await ensureTemplate(config, Promise.resolve(fp), async (target) => {
      building = target.database;
      await build(target);
    });
    try {
      expect(lease).toMatchObject({ template: templateName(fp), built: false });
      expect(calls.count).toBe(2);
      expect(await databaseState(building)).toBe('missing');
    } finally {
      await lease.release();
    }
  });

  it('publishes nothing and leaves nothing behind when the build throws half-way', async () => {
    const fp = freshFingerprint('throws');
    let building = '';
    const failing = async (target: DatabaseTarget) => {
      building = target.database;
      throw new Error('build broke');
    };
    await expect(buildTemplate(config, fp, failing)).rejects.toThrow('build broke');
    expect(building).toMatch(/^pgtwin_wip_[0-9a-f]{16}$/);
    expect(await databaseState(templateName(fp))).toBe('missing');
    expect(await databaseState(building)).toBe('missing');
  });

  it('a build killed half-way publishes nothing, and the next run drops its leftover and builds', async () => {
    const fp = freshFingerprint('killed');
    const child = spawn(
      process.execPath,
      [await sourceScript(fileURLToPath(new URL('./killed-build.ts', import.meta.url)))],
      {
        env: { ...process.env, SPEED_CONFIG: JSON.stringify(optionsOf(config)), SPEED_FINGERPRINT: fp },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let leftover = '';
    for await (const line of createInterface({ input: child.stdout! })) {
      if (!line.startsWith('building ')) continue;
      leftover = line.slice('building '.length);
      break;
    }
    created.add(leftover);
    expect(await databaseState(leftover)).toBe('database');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const admin = await connect(config.admin, 'admin');
    expect(await findTemplate(admin, fp)).toBeUndefined();
    await admin.end();
    // The killed builder's session may take a moment to end on the server; the build lock waits for it.
    const next = await buildTemplate(config, fp, lightBuilder());
    expect(next.built).toBe(true);
    expect(await databaseState(leftover)).toBe('missing');
  });

  it('never drops a template a run is leasing: not gc, not another run', async () => {
    const fp = freshFingerprint('leased');
    const lease = await ensureTemplate(config, fp, lightBuilder());
    const template = lease.template;
    // Built long ago by a run that is gone: only the lease keeps it.
    await stamp(template, { kind: 'template', run: 'elsewhere:1', created: '2000-01-01T00:00:00Z' });
    const only = new RegExp(`^${template}$`);
    expect((await gc(config, { olderThanMs: 0, names: only })).kept).toMatchObject([
      { name: template, kept: 'leased' },
    ]);
    expect(await dropTemplate(config, template)).toBe(false);
    expect(await databaseState(template)).toBe('template');

    await lease.release();
    expect((await gc(config, { olderThanMs: 0, names: only })).dropped).toMatchObject([{ name: template }]);
    expect(await databaseState(template)).toBe('missing');
  });
});

function optionsOf(of: ResolvedConfig) {
  const server = (target: ResolvedConfig['test']) => ({
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
  });
  return {
    rootDir: of.rootDir,
    configFile: false,
    env: {},
    seeds: of.seeds,
    production: server(of.production),
    test: server(of.test),
    admin: server(of.admin),
  };
}

/** Overwrites a database's marker, as another (older) run would have written it. */
async function stamp(database: string, marker: TestMarker): Promise<void> {
  const admin = await connect(config.admin, 'admin');
  try {
    await writeMarker(admin, database, marker);
  } finally {
    await admin.end();
  }
}
