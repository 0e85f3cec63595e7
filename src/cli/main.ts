import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { resolveConfig, type ResolvedConfig } from '../config/resolve-config.js';
import { ConnectionError, PgtwinError, SetupError } from '../errors.js';
import { pgtwinVersion } from '../mirror/pgtwin-version.js';
import { didYouMean } from '../util/closest-name.js';
import type { Command, CommandContext, OptionSpec } from './command.js';
import { diffCommand } from './commands/diff.js';
import { doctorCommand } from './commands/doctor.js';
import { dumpCommand } from './commands/dump.js';
import { gcCommand } from './commands/gc.js';
import { resetCommand } from './commands/reset.js';
import { restoreCommand } from './commands/restore.js';
import { setupCommand } from './commands/setup.js';
import { syncCommand } from './commands/sync.js';
import { causes, EXIT, exitCodeFor, rootCause } from './exit-codes.js';
import { commandHelp, generalHelp, GLOBAL_OPTIONS } from './help.js';
import { Terminal, type CliIo } from './terminal.js';
import { UsageError } from './usage-error.js';

/** Every `pgtwin` command, in the order help lists them. */
export const COMMANDS: readonly Command[] = [
  setupCommand,
  resetCommand,
  syncCommand,
  diffCommand,
  dumpCommand,
  restoreCommand,
  doctorCommand,
  gcCommand,
];

/** Commands that show the configuration's warnings themselves. */
const SHOWS_OWN_WARNINGS = new Set(['doctor', 'setup']);

/** Commands that change the test database; a failure names the guard or the database. */
const NEEDS_TEST_DATABASE = new Set(['reset', 'sync', 'diff']);

/**
 * Runs `pgtwin` with `argv` (the arguments after the program name) and returns the exit code; never throws
 * and never calls `process.exit`, so tests can run it in-process.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const json = argv.includes('--json');
  const debug = argv.includes('--debug');
  const terminal = new Terminal(io, { json, debug });
  // Known before any config is read, so even a failing resolve cannot print them.
  terminal.addSecrets([io.env.DB_PASS, io.env.TEST_DB_PASS]);
  let command: Command | undefined;
  try {
    const parsed = parseCommandLine(argv);
    command = parsed.command;
    if (parsed.version) {
      if (json) terminal.printJson({ ok: true, version: pgtwinVersion() });
      else io.stdout.write(`${pgtwinVersion()}\n`);
      return EXIT.ok;
    }
    if (parsed.help || !command) {
      const text = command ? commandHelp(command) : generalHelp(COMMANDS, pgtwinVersion());
      if (json) terminal.printJson({ ok: true, command: command?.name ?? null, help: text });
      else io.stdout.write(`${text}\n`);
      return EXIT.ok;
    }

    const { values } = parsed;
    const { name } = command;
    const resolveOptions: ResolveConfigOptions = {
      rootDir: io.cwd,
      env: io.env,
      ...(typeof values.config === 'string' ? { configFile: path.resolve(io.cwd, values.config) } : {}),
      ...(Array.isArray(values['env-file']) ? { envFiles: values['env-file'] } : {}),
    };
    let resolved: Promise<ResolvedConfig> | undefined;
    const context: CommandContext = {
      io,
      terminal,
      values,
      positionals: parsed.positionals,
      resolveOptions,
      config: () =>
        (resolved ??= resolveConfig(resolveOptions).then((config) => {
          terminal.addSecrets([config.production.password, config.test.password, config.admin.password]);
          // doctor reports them as a check; setup's global setup logs them itself.
          if (!SHOWS_OWN_WARNINGS.has(name))
            for (const warning of config.warnings) terminal.log(`pgtwin ${name}: warning: ${warning}`);
          terminal.useConfig(config);
          return config;
        })),
    };
    const result = await command.run(context);
    if (json)
      terminal.printJson({
        ok: result.code === EXIT.ok,
        command: command.name,
        exitCode: result.code,
        ...result.json,
      });
    return result.code;
  } catch (error) {
    return reportFailure(error, command, terminal);
  }
}

interface ParsedCommandLine {
  command: Command | undefined;
  values: CommandContext['values'];
  positionals: string[];
  help: boolean;
  version: boolean;
}

function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  // First pass, lenient: find the command among the arguments, wherever the global options are.
  const every: Record<string, OptionSpec> = {
    ...GLOBAL_OPTIONS,
    version: { type: 'boolean', short: 'v', help: '' },
  };
  for (const command of COMMANDS) Object.assign(every, command.options);
  const { tokens } = parseArgs({
    args: [...argv],
    options: toParseArgs(every),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionals = tokens.filter((token) => token.kind === 'positional').map((token) => token.value);
  let name = positionals[0];
  let helpFor = false;
  if (name === 'help') {
    helpFor = true;
    name = positionals[1];
  }
  const command = name === undefined ? undefined : COMMANDS.find((candidate) => candidate.name === name);
  if (name !== undefined && !command) {
    throw new UsageError(
      `Unknown command "${name}"${didYouMean(
        name,
        COMMANDS.map((c) => c.name),
      )}. Run pgtwin --help for the list of commands.`,
    );
  }

  const options = { ...GLOBAL_OPTIONS, ...(command?.options ?? {}) };
  if (!command) options.version = { type: 'boolean', short: 'v', help: '' };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: toParseArgs(options),
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    const message = (error as Error).message
      .replace(/\s*To specify a positional argument.*$/s, '')
      .replace(/\.$/, '');
    throw new UsageError(
      `${message}. Run pgtwin ${command ? `help ${command.name}` : '--help'} for the options.`,
      command?.name,
    );
  }
  const rest = parsed.positionals.slice(helpFor ? 2 : 1);
  const wantsHelp = helpFor || parsed.values.help === true;
  if (command && !wantsHelp) {
    const { min, max } = command.positionals;
    if (rest.length < min || rest.length > max) {
      const usage = `pgtwin ${command.name}${command.args ? ` ${command.args}` : ''}`;
      throw new UsageError(
        rest.length < min
          ? `missing argument. Usage: ${usage}.`
          : `unexpected argument "${rest[max]}". Usage: ${usage}.`,
        command.name,
      );
    }
  }
  return {
    command,
    // parseArgs types `multiple` options loosely; only string options are declared multiple.
    values: parsed.values as CommandContext['values'],
    positionals: rest,
    help: wantsHelp,
    version: parsed.values.version === true,
  };
}

function toParseArgs(options: Record<string, OptionSpec>) {
  const out: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(options)) {
    out[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  return out;
}

/** Prints the failure in one or two lines (the stack too with --debug) and returns its exit code. */
function reportFailure(error: unknown, command: Command | undefined, terminal: Terminal): number {
  terminal.endStatus();
  const code = exitCodeFor(error);
  const cause = rootCause(error);
  if (cause instanceof UsageError && cause.command)
    command ??= COMMANDS.find((c) => c.name === cause.command);
  const prefix = `pgtwin${command ? ` ${command.name}` : ''}`;
  const message =
    error instanceof SetupError && cause instanceof PgtwinError
      ? `phase ${error.phase} failed: ${cause.message}`
      : error instanceof PgtwinError
        ? error.message
        : cause instanceof Error
          ? `unexpected error: ${cause.message}`
          : `unexpected error: ${String(cause)}`;
  terminal.log(`${prefix}: ${message}`);
  const hint = hintFor(cause, command);
  if (hint) terminal.log(hint);
  if (terminal.debug) {
    for (const item of causes(error)) {
      if (item instanceof Error && item.stack) terminal.log(item.stack);
    }
  } else if (!(cause instanceof PgtwinError)) {
    terminal.log('Run again with --debug for the stack trace.');
  }
  if (terminal.json) {
    const fields =
      cause instanceof PgtwinError ? { ...cause, message: cause.message, name: cause.name } : undefined;
    terminal.printJson({
      ok: false,
      command: command?.name ?? null,
      exitCode: code,
      error: {
        name: cause instanceof Error ? cause.name : 'Error',
        code: (cause as { code?: unknown } | undefined)?.code ?? null,
        message,
        ...(fields ? { details: fields } : {}),
      },
    });
  }
  return code;
}

function hintFor(cause: unknown, command: Command | undefined): string | undefined {
  if (
    command &&
    NEEDS_TEST_DATABASE.has(command.name) &&
    cause instanceof ConnectionError &&
    /test database/.test(cause.message) &&
    /does not exist/.test(cause.message)
  ) {
    return 'If the test database was never set up: pgtwin setup creates it and its role.';
  }
  return undefined;
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}
