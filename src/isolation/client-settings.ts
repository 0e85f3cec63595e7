/** Startup parameters that are not run-time parameters of the session, or that the shared connection keeps. */
const NOT_SETTINGS = new Set([
  'user',
  'database',
  'options',
  'replication',
  'fallback_application_name',
  // The shared connection's encoding is the one pgtwin and node-pg read its results in.
  'client_encoding',
]);

/**
 * One application client's session settings: its startup parameters (`application_name`, `options=-c ...`,
 * `statement_timeout`, `search_path`, `TimeZone`, ...) and, within the current test, the values its own
 * `SET`/`RESET` gave it. The {@link SettingsSwitch} of the connection it runs on keeps the backend's settings
 * those of the client whose statement runs.
 */
export class ClientSettings {
  /** Parameter name (lower case) to startup value. */
  readonly startup: ReadonlyMap<string, string>;
  /** The test the fields below describe; a client starts each test with its startup values. */
  testId: number | undefined;
  /** Its values in that test, where they may differ from the connection's; others are the connection's. */
  values = new Map<string, string>();
  /** Parameters its statements may have changed since {@link values} were last read from the server. */
  dirty = new Set<string>();
  /** A rollback may have changed any parameter since {@link values} were last read. */
  stale = false;
  /** Startup values to set again after its statement (it `RESET` them). */
  reapply = new Set<string>();
  /** Parameters it set for its open application transaction only (`SET LOCAL`). */
  local = new Set<string>();
  /** Its values when that transaction began, which its COMMIT returns them to. */
  atBegin: Map<string, string> | undefined;

  constructor(startup: Iterable<[string, string]> = []) {
    const values = new Map<string, string>();
    for (const [name, value] of startup) values.set(name.toLowerCase(), value);
    // A client that names no application has none on the server, whatever the shared connection's is.
    if (!values.has('application_name')) values.set('application_name', '');
    this.startup = values;
  }

  /**
   * The settings a client asks for in its startup packet (as the endpoint receives it, or as node-pg's
   * `getStartupConf()` would send it): every run-time parameter, with `options` (`-c name=value`,
   * `--name=value`) expanded as the server expands it, and `fallback_application_name` when no
   * `application_name` is given.
   *
   * @example
   * ClientSettings.fromStartup({ user: 'u', options: '-c search_path=app' }).startup // search_path → app
   */
  static fromStartup(parameters: Record<string, string | undefined>): ClientSettings {
    const startup = new Map<string, string>();
    for (const [name, value] of Object.entries(parameters)) {
      if (value === undefined || NOT_SETTINGS.has(name.toLowerCase()) || name.startsWith('_pq_')) continue;
      startup.set(name.toLowerCase(), value);
    }
    if (!startup.has('application_name') && parameters.fallback_application_name !== undefined)
      startup.set('application_name', parameters.fallback_application_name);
    for (const [name, value] of optionSettings(parameters.options ?? '')) startup.set(name, value);
    return new ClientSettings(startup);
  }

  /** Starts test `testId` with the startup values, unless it already did; whether it did now. */
  enterTest(testId: number): boolean {
    if (this.testId === testId) return false;
    this.testId = testId;
    this.values = new Map(this.startup);
    this.dirty.clear();
    this.stale = false;
    this.reapply.clear();
    this.local.clear();
    this.atBegin = undefined;
    return true;
  }
}

/** The `-c name=value` and `--name=value` switches of a startup `options` string, as the server reads it. */
function optionSettings(options: string): Array<[string, string]> {
  // Words are separated by spaces; a backslash takes the next character literally (libpq's escaping).
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) word = (word ?? '') + options[++i];
    else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + ch;
  }
  if (word !== undefined) words.push(word);
  const settings: Array<[string, string]> = [];
  for (let i = 0; i < words.length; i++) {
    let setting: string | undefined;
    if (words[i] === '-c') setting = words[++i];
    else if (words[i]!.startsWith('-c')) setting = words[i]!.slice(2);
    else if (words[i]!.startsWith('--')) setting = words[i]!.slice(2);
    const equals = setting?.indexOf('=') ?? -1;
    if (setting === undefined || equals <= 0) continue;
    settings.push([setting.slice(0, equals).replaceAll('-', '_').toLowerCase(), setting.slice(equals + 1)]);
  }
  return settings;
}

const byClient = new WeakMap<object, ClientSettings>();

/** The settings of application client `client` (an in-process `pg` client, or an endpoint client's identity). */
export function settingsOf(client: object): ClientSettings {
  let settings = byClient.get(client);
  if (!settings) byClient.set(client, (settings = new ClientSettings()));
  return settings;
}

/** Gives `client` the settings it connected with. */
export function attachSettings(client: object, settings: ClientSettings): void {
  byClient.set(client, settings);
}
