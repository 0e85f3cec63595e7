import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { tableChecksums } from '../../src/mirror/index.js';
import { useScratch } from '../helpers/databases.js';
import { connectTo } from './mirror-databases.js';

const scratch = useScratch('mirror_checksum');
const TABLES = ['public.big', 'public.small'];
const open: pg.Client[] = [];
let url: string;

async function session(): Promise<pg.Client> {
  const client = await connectTo(url, { readOnly: true });
  open.push(client);
  return client;
}

beforeAll(async () => {
  ({ url } = await scratch.database('source'));
  const setup = await connectTo(url);
  open.push(setup);
  // About 400 pages: cut into page ranges read by separate sessions.
  await setup.query(`
    CREATE TABLE public.big (id int PRIMARY KEY, body text, at timestamptz, doubled int GENERATED ALWAYS AS (id * 2) STORED);
    INSERT INTO public.big (id, body, at) SELECT i, repeat(md5(i::text), 2), '2024-01-01'::timestamptz + i * interval '1 minute'
      FROM generate_series(1, 30000) AS i;
    CREATE TABLE public.small (id int, note text);
    INSERT INTO public.small VALUES (1, 'one'), (2, NULL);`);
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

describe('tableChecksums over parallel sessions', () => {
  it('gives the checksums one session gives, md5 and quick, reading a large table as page ranges at once', async () => {
    for (const quick of [false, true]) {
      let opened = 0;
      const parallel = await tableChecksums(await session(), TABLES, {
        quick,
        openSession: () => {
          opened++;
          return session();
        },
      });
      expect(parallel).toEqual(await tableChecksums(await session(), TABLES, { quick }));
      expect(parallel['public.big']!.rowCount).toBe(30000);
      // One range per session: the exporting one and three that join its snapshot.
      expect(opened).toBe(3);
    }
  });

  it('sees a change to one row in the middle of a large table', async () => {
    const reader = await session();
    const sums = () => tableChecksums(reader, TABLES, { quick: true, openSession: session });
    const before = await sums();
    const writer = await connectTo(url);
    open.push(writer);
    await writer.query(`UPDATE public.big SET body = upper(body) WHERE id = 15000`);
    const after = await sums();
    expect(after['public.big']!.checksum).not.toBe(before['public.big']!.checksum);
    expect(after['public.small']).toEqual(before['public.small']);
  });
});
