import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  enableIsolation,
  exemptFromIsolation,
  formatLeakReport,
  type LeakReport,
} from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('leaks');

describe('leak detection', () => {
  let url: string;
  beforeAll(async () => {
    url = (await scratch.database()).url;
    await adminQuery(
      'CREATE TABLE kept (id int PRIMARY KEY); CREATE TABLE leaky (id int PRIMARY KEY); INSERT INTO kept VALUES (1)',
      [],
      url,
    );
  });

  it('reports what a beforeAll and an exempt connection committed, and nothing the tests rolled back', async () => {
    const reports: LeakReport[] = [];
    const isolation = await enableIsolation({
      connectionString: url,
      detectLeaks: (report) => reports.push(report),
    });
    const app = new pg.Client({ connectionString: url });
    await app.connect();
    // Outside any test, as in a beforeAll: it commits.
    await app.query('INSERT INTO leaky VALUES (1), (2)');
    await isolation.begin();
    await app.query('INSERT INTO kept VALUES (2)');
    const outside = exemptFromIsolation(new pg.Client({ connectionString: url }));
    await outside.connect();
    await outside.query('UPDATE kept SET id = 10 WHERE id = 1');
    await outside.end();
    await isolation.rollback();
    await app.end();
    const report = await isolation.close();

    expect(reports).toEqual([report]);
    expect(report!.tables).toEqual([
      { table: 'public.kept', rowsBefore: 1, rowsAfter: 1, rowsWritten: 1, change: 'changed' },
      { table: 'public.leaky', rowsBefore: 0, rowsAfter: 2, rowsWritten: 2, change: 'changed' },
    ]);
    expect(formatLeakReport(report!)).toContain('public.leaky: +2 rows (0 → 2), 2 rows written');
  });

  it('reports nothing when every write was rolled back', async () => {
    const isolation = await enableIsolation({ connectionString: url, detectLeaks: () => undefined });
    const app = new pg.Client({ connectionString: url });
    await app.connect();
    await isolation.begin();
    await app.query('INSERT INTO leaky VALUES (3)');
    await isolation.rollback();
    await app.end();
    expect((await isolation.close())!.tables).toEqual([]);
  });
});
