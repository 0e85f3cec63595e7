import { DEFAULT_GC_AGE_MS, gc, type GcEntry } from '../../provision/gc.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { onTwinServer, refuseProductionTest } from '../twin-server.js';
import { UsageError } from '../usage-error.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const gcCommand: Command = {
  name: 'gc',
  summary: 'Drop stale pgtwin databases (dry run unless --yes)',
  args: '',
  description:
    "Lists the databases pgtwin created on the twin's server (test databases, templates, worker copies)\n" +
    'whose run is gone and that are older than --older-than, and drops them with --yes. Databases without\n' +
    "pgtwin's marker are never touched; templates leased by a running run and builds in progress are kept.\n" +
    'Refused (exit 3) when the configured test database is production.',
  options: {
    yes: { type: 'boolean', short: 'y', help: 'drop them (without it, only show what would be dropped)' },
    'older-than': {
      type: 'string',
      value: 'AGE',
      help: 'minimum age, e.g. 30m, 12h, 7d, 0 (default 1d)',
    },
    prefix: { type: 'string', value: 'NAME', help: 'only databases whose name starts with NAME' },
  },
  positionals: { min: 0, max: 0 },
  examples: ['pgtwin gc', 'pgtwin gc --older-than 2h --yes'],
  async run({ terminal, config, values }) {
    const olderThanMs =
      typeof values['older-than'] === 'string' ? parseAge(values['older-than']) : DEFAULT_GC_AGE_MS;
    const prefix = typeof values.prefix === 'string' ? values.prefix : undefined;
    const dryRun = values.yes !== true;
    return onTwinServer(await config(), terminal, async (config) => {
      if (!dryRun) await refuseProductionTest(config, 'collect garbage next to');
      const result = await gc(config, {
        olderThanMs,
        dryRun,
        names:
          prefix === undefined ? undefined : new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      });
      const listed = dryRun ? result.wouldDrop : result.dropped;
      for (const entry of listed)
        terminal.print(
          `${terminal.mark(dryRun ? 'warn' : 'pass')} ${dryRun ? 'would drop' : 'dropped'} ${describe(entry)}`,
        );
      for (const entry of result.kept)
        terminal.print(`${terminal.mark('info')} kept ${describe(entry)}: ${entry.kept}`);
      const count = listed.length;
      const noun = `database${count === 1 ? '' : 's'}`;
      terminal.print(
        count === 0
          ? `No stale pgtwin databases on ${config.admin.host}:${config.admin.port}.`
          : dryRun
            ? `Dry run: ${count} stale ${noun} would be dropped. Run pgtwin gc --yes to drop ${count === 1 ? 'it' : 'them'}.`
            : `Dropped ${count} stale ${noun}.`,
      );
      return { code: EXIT.ok, json: { ...result, olderThanMs } };
    });
  },
};

function describe(entry: GcEntry): string {
  return `${entry.name} (${entry.kind} of run ${entry.run}, ${formatAge(entry.ageMs)} old)`;
}

function formatAge(ms: number): string {
  if (ms >= UNITS.d!) return `${Math.floor(ms / UNITS.d!)} d`;
  if (ms >= UNITS.h!) return `${Math.floor(ms / UNITS.h!)} h`;
  return `${Math.floor(ms / UNITS.m!)} min`;
}

/** `30m`, `12h`, `7d`, `90s` or `0` → milliseconds. */
export function parseAge(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/.exec(text.trim());
  if (!match || (match[2] === '' && Number(match[1]) !== 0)) {
    throw new UsageError(
      `--older-than must be an age such as 30m, 12h or 7d (s, m, h, d), or 0, got "${text}".`,
      'gc',
    );
  }
  return Number(match[1]) * (UNITS[match[2]!] ?? 0);
}
