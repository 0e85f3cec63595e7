import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/index.js';
import { connect } from '../../src/connection/connect.js';
import { MirrorError } from '../../src/errors.js';
import { compareMirror } from '../../src/mirror/index.js';
import { templateName } from '../../src/provision/template-locks.js';
import { cloneTemplate, ensureTemplate } from '../../src/provision/template-store.js';
import { compareSchemas } from '../../src/structure/index.js';
import { selectionFromConfig } from '../../src/structure/schema-selection.js';
import { dropAfterAll, speedProject, twinBuilder } from './speed-fixture.js';

const created = new Set<string>();
dropAfterAll(() => created);

let project: Awaited<ReturnType<typeof speedProject>>;
let config: ResolvedConfig;

beforeAll(async () => {
  project = await speedProject('build');
  config = project.config;
  created.add(project.production);
});

/**
 * A fingerprint per test and per process (the template's name takes its first 12 digits, so a second suite
 * on the server never builds the same one): the builds are what is tested, not the cache.
 */
function fingerprintFor(label: string): string {
  const fingerprint = createHash('sha256').update(`${label} ${project.production}`).digest('hex');
  created.add(templateName(fingerprint));
  return fingerprint;
}

describe('the twin build (tables, rows, then keys, indexes and triggers)', () => {
  it("gives production's structure and mirrored rows, and the seeds on top", async () => {
    const lease = await ensureTemplate(config, fingerprintFor('exact'), twinBuilder(config));
    await lease.release();
    const name = `${config.test.database}_exact`;
    created.add(name);
    await cloneTemplate(config, lease.template, name);

    const production = await connect(config.production, 'production');
    const twin = await connect(config.test.withDatabase(name), 'test');
    try {
      const diff = await compareSchemas(production, twin, selectionFromConfig(config));
      expect({ missing: diff.missing, extra: diff.extra, changed: diff.changed }).toEqual({
        missing: [],
        extra: [],
        changed: [],
      });
      const drift = await compareMirror(production, twin, config.mirror.full);
      expect(drift.tables.map((table) => [table.table, table.same])).toEqual(
        config.mirror.full.map((table) => [table, true]),
      );
      const seeded = await twin.query<{ n: string }>('SELECT count(*) AS n FROM public.clients');
      expect(Number(seeded.rows[0]!.n)).toBeGreaterThan(0);
    } finally {
      await Promise.all([production.end(), twin.end()]);
    }
  });

  it('refuses, publishing nothing, when mirrored rows reference a table that is not mirrored', async () => {
    const narrowed = await project.reconfigure({ mirror: { full: ['public.prompts'] } });
    const fingerprint = fingerprintFor('crossing');
    const failure = await ensureTemplate(narrowed, fingerprint, twinBuilder(narrowed)).catch(
      (error: unknown) => error,
    );
    // The setup's phase error, caused by the mirror's.
    expect((failure as Error).cause).toBeInstanceOf(MirrorError);
    expect((failure as Error).message).toMatch(/Mirror public\.object_models too/);
    const admin = await connect(config.admin, 'admin');
    try {
      const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        templateName(fingerprint),
      ]);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
  });
});
