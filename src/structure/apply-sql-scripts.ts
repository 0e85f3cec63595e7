import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inTransaction } from '../connection/in-transaction.js';
import { SqlScriptError } from '../errors.js';
import { withClient, type Queryable } from './queryable.js';

/**
 * Runs every `.sql` file of `directory` in name order, all in one transaction: if one fails, none takes
 * effect and a {@link SqlScriptError} names the file and carries the database's message. Whether a
 * script can run twice is the script's business (`CREATE ... IF NOT EXISTS`). Returns the files run.
 *
 * @example
 * ```ts
 * await applySqlScripts(testClient, 'db/schema'); // 001_extensions.sql, 002_tables.sql, ...
 * ```
 */
export function applySqlScripts(
  target: Queryable,
  directory: string,
  options: { replaceSchemas?: readonly string[] } = {},
): Promise<string[]> {
  return withClient(target, async (client) => {
    const files = await listSqlScripts(directory);
    return inTransaction(client, async () => {
      // Replacing inside the same transaction: a failing script leaves the old schemas in place.
      for (const schema of options.replaceSchemas ?? []) {
        await client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`);
      }
      if (options.replaceSchemas?.includes('public')) await client.query('CREATE SCHEMA public');
      for (const file of files) {
        const sql = await readFile(file, 'utf8');
        await client.query(sql).catch((error: Error & { position?: string }) => {
          const at = error.position ? ` at character ${error.position}` : '';
          throw new SqlScriptError(
            file,
            `${file} failed${at}: ${error.message}. Nothing was changed; fix the script and run again.`,
            {
              cause: error,
            },
          );
        });
      }
      return files;
    });
  });
}

/** The `.sql` files of `directory`, in the order they are applied. */
export async function listSqlScripts(directory: string): Promise<string[]> {
  return (await readdir(directory, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && entry.name.endsWith('.sql'))
    .map((entry) => join(directory, entry.name))
    .sort();
}
