import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import type { CliIo, Terminal } from './terminal.js';

/** One option of a command, as `node:util` `parseArgs` takes it, plus its help. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder of the value in help, e.g. `DIR`. */
  value?: string;
  help: string;
}

/** What a command reports: its exit code and the fields of its `--json` document. */
export interface CommandResult {
  code: number;
  json: Record<string, unknown>;
}

/** What a command runs with. */
export interface CommandContext {
  io: CliIo;
  terminal: Terminal;
  /** Option values of the command line, by long name. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Arguments after the command name. */
  positionals: string[];
  /** `rootDir`, `configFile` (`--config`), `envFiles` (`--env-file`) and `env` for `resolveConfig`. */
  resolveOptions: ResolveConfigOptions;
  /** The resolved configuration (once); its passwords are masked in all output from then on. */
  config(): Promise<ResolvedConfig>;
}

/** A `pgtwin <name>` command. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Arguments in the usage line, e.g. `[tables...]`. */
  args: string;
  /** Paragraphs for `pgtwin help <name>`. */
  description: string;
  options: Record<string, OptionSpec>;
  positionals: { min: number; max: number };
  examples: string[];
  run(context: CommandContext): Promise<CommandResult>;
}
