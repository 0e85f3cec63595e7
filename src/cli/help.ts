import type { Command, OptionSpec } from './command.js';

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: {
    type: 'string',
    short: 'c',
    value: 'FILE',
    help: 'config file (default: the first pgtwin.config.{ts,mts,js,mjs,json} in the current directory)',
  },
  'env-file': {
    type: 'string',
    multiple: true,
    value: 'FILE',
    help: '.env file read below the real environment; repeatable (default: .env if present)',
  },
  json: { type: 'boolean', help: 'print one JSON document on stdout; logs and progress go to stderr' },
  debug: { type: 'boolean', help: 'add stack traces to errors and show debug lines' },
  help: { type: 'boolean', short: 'h', help: 'show help for the command' },
};

export const EXIT_CODES_HELP = [
  'Exit codes:',
  '  0  success',
  '  1  drift found (diff), a check failed (doctor), or a snapshot failed its integrity check (restore)',
  '  2  usage or configuration error',
  '  3  refused by the production guard: the test database is production (nothing was changed)',
  '  4  database error: a server could not be reached, refused the login, or failed a statement',
];

/** `pgtwin --help`. */
export function generalHelp(commands: readonly Command[], version: string): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    `pgtwin ${version}: a PostgreSQL test twin of production`,
    '',
    'Usage: pgtwin <command> [options]',
    '',
    'Commands:',
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    `  ${'help'.padEnd(width)}  Show help for a command (pgtwin help <command>)`,
    '',
    'Options (every command):',
    ...renderOptions({
      ...GLOBAL_OPTIONS,
      version: { type: 'boolean', short: 'v', help: 'print the version' },
    }),
    '',
    ...EXIT_CODES_HELP,
    '',
    'Configuration is read as by the test runners: options in the config file, then the environment',
    '(DB_*, TEST_DB_*, DATABASE_URL, TEST_DATABASE_URL, TEST_DB_ADMIN_URL, PGTWIN_PROVIDER), then .env files.',
    'Progress is shown on a terminal; plain lines when stderr is not a terminal or CI is set; NO_COLOR turns colours off.',
  ].join('\n');
}

/** `pgtwin help <command>` and `pgtwin <command> --help`. */
export function commandHelp(command: Command): string {
  const lines = [
    `pgtwin ${command.name}: ${command.summary}`,
    '',
    `Usage: pgtwin ${command.name}${command.args ? ` ${command.args}` : ''} [options]`,
    '',
    command.description,
    '',
  ];
  if (Object.keys(command.options).length > 0) lines.push('Options:', ...renderOptions(command.options), '');
  lines.push('Options (every command):', ...renderOptions(GLOBAL_OPTIONS), '');
  lines.push('Examples:', ...command.examples.map((example) => `  ${example}`), '', ...EXIT_CODES_HELP);
  return lines.join('\n');
}

function renderOptions(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    return [flag, spec.help] as const;
  });
  const width = Math.max(20, ...rows.map(([flag]) => flag.length));
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`);
}
