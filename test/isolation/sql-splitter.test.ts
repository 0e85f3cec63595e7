import { describe, expect, it } from 'vitest';
import { splitSql } from '../../src/isolation/sql-splitter.js';

describe('splitSql', () => {
  it('splits on semicolons outside quotes, identifiers, dollar quotes and comments', () => {
    const sql = `BEGIN; INSERT INTO "a;b" VALUES ('x;''y', E'\\';z', $$ ; $$, $fn$ ; $fn$) -- c;
      ; /* a /* nested; */ comment; */ COMMIT;`;
    expect(splitSql(sql).map((s) => s.trim())).toEqual([
      'BEGIN',
      `INSERT INTO "a;b" VALUES ('x;''y', E'\\';z', $$ ; $$, $fn$ ; $fn$) -- c;`,
      '/* a /* nested; */ comment; */ COMMIT',
    ]);
  });

  it('keeps a BEGIN ATOMIC function body whole', () => {
    const sql =
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT f()';
    expect(splitSql(sql)).toHaveLength(2);
  });

  it('drops empty statements and keeps positional parameters intact', () => {
    expect(splitSql('SELECT $1;; -- only a comment\n;')).toEqual(['SELECT $1']);
  });
});
