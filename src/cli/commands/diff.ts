import type pg from 'pg';
import { connect } from '../../connection/connect.js';
import { MirrorError } from '../../errors.js';
import { compareMirror, type TableDrift } from '../../mirror/compare-mirror.js';
import { renderMirrorDrift } from '../../mirror/render-mirror-drift.js';
import { compareSchemas } from '../../structure/compare-schemas.js';
import { renderSchemaDiff } from '../../structure/render-schema-diff.js';
import { selectionFromConfig } from '../../structure/schema-selection.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { onTwinServer } from '../twin-server.js';

/** A mirrored table that could not be compared, e.g. because it is missing on one side. */
interface UncomparedTable {
  table: string;
  same: false;
  error: string;
}

export const diffCommand: Command = {
  name: 'diff',
  summary: 'Show structure and mirrored-data drift between production and test (exit 1 on drift)',
  args: '',
  description:
    "Compares the test database with production: every object's definition in public and the project\n" +
    "schemas, and the mirrored tables' rows (counts, checksums, and the keys added, removed or changed).\n" +
    'Exits 1 when anything differs, so it can gate CI. Reads both databases, changes neither.',
  options: {
    'structure-only': { type: 'boolean', help: 'compare the structure only' },
    'data-only': { type: 'boolean', help: "compare the mirrored tables' data only" },
  },
  positionals: { min: 0, max: 0 },
  examples: ['pgtwin diff', 'pgtwin diff --structure-only --json'],
  async run({ terminal, config, values }) {
    const checkStructure = values['data-only'] !== true;
    const checkData = values['structure-only'] !== true;
    return onTwinServer(await config(), terminal, async (config) => {
      const production = await connect(config.production, 'production');
      let test: pg.Client | undefined;
      try {
        test = await connect(config.test, 'test');
        const structure = checkStructure
          ? await compareSchemas(production, test, selectionFromConfig(config))
          : undefined;
        const tables: (TableDrift | UncomparedTable)[] = [];
        if (checkData) {
          for (const table of config.mirror.full) {
            try {
              tables.push(...(await compareMirror(production, test, [table])).tables);
            } catch (error) {
              if (!(error instanceof MirrorError)) throw error;
              tables.push({ table, same: false, error: error.message });
            }
          }
        }
        const dataSame = tables.every((table) => table.same);
        const same = (structure?.equal ?? true) && dataSame;

        if (structure) {
          terminal.print(terminal.bold('Structure'));
          terminal.print(
            renderSchemaDiff(structure, {
              color: terminal.color,
              labels: { expected: 'production', actual: 'test' },
            }),
          );
        }
        if (checkData) {
          if (structure) terminal.print();
          terminal.print(terminal.bold('Mirrored data'));
          const compared = tables.filter((table): table is TableDrift => !('error' in table));
          if (compared.length > 0) terminal.print(renderMirrorDrift({ same: dataSame, tables: compared }));
          for (const table of tables)
            if ('error' in table) terminal.print(`${table.table}  not compared: ${table.error}`);
          if (tables.length === 0) terminal.print('No mirrored tables (mirror.full is empty).');
        }
        terminal.print();
        if (same) {
          terminal.print(
            `${terminal.mark('pass')} No drift between production and ${config.test.describe()}.`,
          );
        } else {
          const parts = [];
          if (structure && !structure.equal) {
            const count = structure.changed.length + structure.missing.length + structure.extra.length;
            parts.push(`${count} structure difference${count === 1 ? '' : 's'}`);
          }
          const drifted = tables.filter((table) => !table.same).length;
          if (drifted > 0) parts.push(`${drifted} mirrored table${drifted === 1 ? ' differs' : 's differ'}`);
          terminal.print(
            `${terminal.mark('fail')} Drift: ${parts.join(', ')}. Run pgtwin reset to rebuild the test database from production.`,
          );
        }
        return {
          code: same ? EXIT.ok : EXIT.failed,
          json: {
            same,
            production: config.production,
            test: config.test,
            structure: structure ?? null,
            mirror: checkData ? { same: dataSame, tables } : null,
          },
        };
      } finally {
        await test?.end();
        await production.end();
      }
    });
  },
};
