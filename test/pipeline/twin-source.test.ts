import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { buildTwin } from '../../src/pipeline/build-twin.js';
import { openTwinSource } from '../../src/pipeline/twin-source.js';
import { MirrorError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/util/logger.js';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { testConfig } from '../helpers/config.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('pgtwin_tsrc');

async function count(url: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ n: number }>(sql)).rows[0]!.n;
  } finally {
    await client.end();
  }
}

describe('a build from production', () => {
  it('copies the very rows its fingerprint hashed, though a mirrored row was committed in between', async () => {
    const production = await scratch.database('prod');
    await createContentgenProduction(production.url, { data: FIXTURE_SIZES.tiny });
    const target = await scratch.database('twin');
    const config = await testConfig({
      // The target is this file's scratch database, which pgtwin did not create.
      env: { PGTWIN_ALLOW_UNMARKED: '1' },
      production: { database: production.name },
      test: { database: target.name },
    });
    const source = await openTwinSource(config);
    let hashed: number;
    try {
      const { data } = await source.readFingerprint({ fresh: true });
      const models = data['public.object_models'];
      if (typeof models !== 'object') throw new Error('no checksum of public.object_models');
      hashed = models.rowCount;
      // Committed after the hashing and before the copy: in neither the fingerprint nor the template.
      await count(
        production.url,
        `WITH added AS (
           INSERT INTO public.object_models (name, json_schema) VALUES ('written meanwhile', '{}') RETURNING 1
         ) SELECT count(*)::int AS n FROM added`,
      );
      await buildTwin(config, config.test, { source, context: { logger: silentLogger, phases: [] } });
    } finally {
      await source.close();
    }
    const rows = 'SELECT count(*)::int AS n FROM public.object_models';
    expect(await count(target.url, rows)).toBe(hashed);
    expect(await count(production.url, rows)).toBe(hashed + 1);
  });

  it('proves rows it did not hash again in the snapshot it copies from, and fails the build when they changed since', async () => {
    const production = await scratch.database('prod');
    await createContentgenProduction(production.url, { data: FIXTURE_SIZES.tiny });
    const config = await testConfig({
      env: { PGTWIN_ALLOW_UNMARKED: '1' },
      production: { database: production.name },
    });
    // A reading that hashes the rows keeps its state, so the next readings prove them instead.
    const hash = async () => {
      const first = await openTwinSource(config);
      await first.readFingerprint({ fresh: true }).finally(() => first.close());
    };

    const build = async (write?: string) => {
      await hash();
      const target = await scratch.database('twin');
      const at = { ...config, test: config.test.withDatabase(target.name) };
      const debug: string[] = [];
      const logger = createLogger({ debug: true, write: (line) => debug.push(line) });
      const source = await openTwinSource(at);
      try {
        await source.readFingerprint({ logger });
        expect(debug.join('\n')).toContain('checksums reused');
        if (write) await count(production.url, write);
        await buildTwin(at, at.test, { source, context: { logger: silentLogger, phases: [] } });
      } finally {
        await source.close();
      }
      return count(target.url, 'SELECT count(*)::int AS n FROM public.object_models');
    };
    const rows = await count(production.url, 'SELECT count(*)::int AS n FROM public.object_models');
    // Nothing written since the proof: the build copies the rows proven.
    expect(await build()).toBe(rows);
    // Written since, but to the same values: the proof fails, the rows hashed in the copy's snapshot match.
    expect(
      await build(
        `WITH same AS (
           UPDATE public.object_models SET name = name WHERE id = (SELECT min(id) FROM public.object_models) RETURNING 1
         ) SELECT count(*)::int AS n FROM same`,
      ),
    ).toBe(rows);
    // A row committed after the proof and before the copy: the build stops instead of publishing it under
    // the fingerprint of the rows without it.
    const failure = await build(
      `WITH added AS (
         INSERT INTO public.object_models (name, json_schema) VALUES ('written meanwhile', '{}') RETURNING 1
       ) SELECT count(*)::int AS n FROM added`,
    ).catch((error: unknown) => error);
    expect((failure as Error).cause).toBeInstanceOf(MirrorError);
    expect((failure as Error).message).toMatch(
      /changed while the test database was being built: .*run again/,
    );
  });
});
