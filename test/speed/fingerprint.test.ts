import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { computeFingerprint, fingerprintInputs } from '../../src/provision/twin-fingerprint.js';
import type { ResolvedConfig } from '../../src/config/index.js';
import { databaseUrl } from '../helpers/databases.js';
import { adminQuery } from '../helpers/databases.js';
import { dropAfterAll, readSources, speedProject } from './speed-fixture.js';

const created: string[] = [];
dropAfterAll(() => created);

let project: Awaited<ReturnType<typeof speedProject>>;
let config: ResolvedConfig;

beforeAll(async () => {
  project = await speedProject('fp');
  config = project.config;
  created.push(project.production);
});

const fingerprint = async (of = config) => computeFingerprint(of, await readSources(of));
const productionQuery = (sql: string) => adminQuery(sql, [], databaseUrl(project.production));

describe('computeFingerprint', () => {
  it('is the same for the same inputs, read twice', async () => {
    const first = await fingerprint();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await fingerprint()).toBe(first);
    // A config resolved again (another test database name) builds the same twin.
    expect(await fingerprint(await project.reconfigure({}))).toBe(first);
  });

  it('changes when production structure changes', async () => {
    const sources = await readSources(config);
    const before = await fingerprintInputs(config, sources);
    await productionQuery('ALTER TABLE public.prompts ADD COLUMN speed_note text');
    const after = await fingerprintInputs(config, await readSources(config));
    expect(after.structure).not.toBe(before.structure);
    expect([after.config, after.seeds]).toEqual([before.config, before.seeds]);
    await productionQuery('ALTER TABLE public.prompts DROP COLUMN speed_note');
    expect(await fingerprint()).toBe(await computeFingerprint(config, sources));
  });

  it('changes when a mirrored row changes, even with the row count unchanged', async () => {
    const before = await fingerprint();
    await productionQuery(`UPDATE public.object_models SET description = 'changed' WHERE id = 1`);
    expect(await fingerprint()).not.toBe(before);
  });

  it('does not change when a table that is not mirrored changes', async () => {
    const before = await fingerprint();
    await productionQuery(`UPDATE public.llm_usage SET model = 'other' WHERE id = 1`);
    expect(await fingerprint()).toBe(before);
  });

  it('changes when a seed file changes', async () => {
    const sources = await readSources(config);
    const before = await computeFingerprint(config, sources);
    await appendFile(project.seedFile, '\n');
    expect(await computeFingerprint(config, sources)).not.toBe(before);
  });

  it('changes when the factories module or a file it imports changes', async () => {
    const sources = await readSources(config);
    await writeFile(path.join(project.rootDir, 'helper.ts'), 'export const n = 1;\n');
    await writeFile(
      path.join(project.rootDir, 'factories.ts'),
      "import { n } from './helper.js';\nexport default { n };\n",
    );
    const withFactories = await project.reconfigure({ factories: 'factories.ts' });
    const before = await computeFingerprint(withFactories, sources);
    expect(before).not.toBe(await computeFingerprint(config, sources));
    await writeFile(path.join(project.rootDir, 'helper.ts'), 'export const n = 2;\n');
    expect(await computeFingerprint(withFactories, sources)).not.toBe(before);
  });

  it('changes with the configuration, the server version and the pgtwin version', async () => {
    const sources = await readSources(config);
    const base = await computeFingerprint(config, sources);
    const otherMirror = await project.reconfigure({ mirror: { full: ['public.object_models'] } });
    const otherSchemas = await project.reconfigure({ projectSchemas: 'tenant_*' });
    const others = [
      await computeFingerprint(otherMirror, sources),
      await computeFingerprint(otherSchemas, sources),
      await computeFingerprint(config, { ...sources, serverVersion: '160000' }),
      await computeFingerprint(config, { ...sources, pgtwinVersion: '9.9.9' }),
    ];
    expect(new Set([base, ...others]).size).toBe(5);
  });
});
