import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * `pg_dump --schema-only --no-owner --no-privileges` of `url`, limited to `schemas`, normalised by the
 * rules in src/structure/README-normalisation.md, as a sorted list of object blocks.
 */
export async function normalisedSchemaDump(url: string, schemas: readonly string[]): Promise<string[]> {
  const args = [
    '--schema-only',
    '--no-owner',
    '--no-privileges',
    ...schemas.flatMap((s) => ['--schema', s]),
    url,
  ];
  const { stdout } = await run('pg_dump', args, { maxBuffer: 64 * 1024 * 1024 });
  return normaliseDump(stdout);
}

/** Whether `pg_dump` can be run here. */
export async function hasPgDump(): Promise<boolean> {
  return run('pg_dump', ['--version']).then(
    () => true,
    () => false,
  );
}

/**
 * Splits a plain-format dump into its object blocks (one per `-- Name: ...` header), drops what differs
 * between two dumps of the same structure by construction, and sorts the blocks.
 */
export function normaliseDump(dump: string): string[] {
  const blocks: string[][] = [];
  let current: string[] | undefined;
  for (const line of dump.split('\n')) {
    const header = /^-- (?:Data for )?Name: (.*)$/.exec(line);
    if (header) {
      // The header names the object; it stays with the block so two objects can't swap definitions.
      current = [`-- ${header[1]}`];
      blocks.push(current);
      continue;
    }
    // Before the first header: session settings and version banners. Everywhere: comment lines,
    // blank lines and psql's \restrict guard (a random key per dump).
    if (
      current === undefined ||
      line.startsWith('--') ||
      line.trim() === '' ||
      /^\\(un)?restrict /.test(line)
    )
      continue;
    current.push(line);
  }
  return blocks.map((block) => block.join('\n')).sort();
}

/** The blocks only in `a` (`-`) and only in `b` (`+`); empty when the dumps are equal. */
export function dumpDifference(a: string[], b: string[]): string[] {
  const inB = new Set(b);
  const inA = new Set(a);
  return [
    ...a.filter((block) => !inB.has(block)).map((x) => `- ${x}`),
    ...b.filter((block) => !inA.has(block)).map((x) => `+ ${x}`),
  ];
}
