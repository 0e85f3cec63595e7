import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureFreshDist } from '../scripts/fresh-dist.js';
import { REPO_ROOT, SERVER, SERVER_URL, type BenchContext } from './bench-context.js';
import { SUITE_SEED_FILE } from './production-fixture.js';

/** `pgtwin setup --json`'s document, the fields the bench reads. */
export interface SetupDocument {
  ok: boolean;
  exitCode: number;
  template?: string;
  phases?: { name: string; ms: number; detail?: string }[];
  ms?: number;
  message?: string;
}

/** A project directory as a user has it: pgtwin.config.json naming the seed file, and its environment. */
export interface CliProject {
  rootDir: string;
  env: Record<string, string>;
}

const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

/**
 * A project for the `pgtwin` command on the bench's production, its test database `test` on the bench's
 * server (`PGTWIN_PROVIDER=server`); `env` adds or overrides variables. Builds dist/ first when stale.
 */
export async function cliProject(
  ctx: BenchContext,
  test: string,
  env: Record<string, string> = {},
): Promise<CliProject> {
  ensureFreshDist(REPO_ROOT);
  const rootDir = await mkdtemp(path.join(tmpdir(), 'pgtwin-bench-cli-'));
  await copyFile(path.join(ctx.rootDir, SUITE_SEED_FILE), path.join(rootDir, SUITE_SEED_FILE));
  await writeFile(path.join(rootDir, 'pgtwin.config.json'), JSON.stringify({ seeds: SUITE_SEED_FILE }));
  return {
    rootDir,
    env: {
      PGTWIN_PROVIDER: 'server',
      DB_HOST: SERVER.host,
      DB_PORT: String(SERVER.port),
      DB_NAME: ctx.names.production,
      DB_USER: SERVER.user,
      TEST_DB_HOST: SERVER.host,
      TEST_DB_PORT: String(SERVER.port),
      TEST_DB_NAME: test,
      TEST_DB_USER: SERVER.user,
      TEST_DB_ADMIN_URL: SERVER_URL,
      ...env,
    },
  };
}

/**
 * Runs `node dist/cli.js <args>` in `project` and returns its wall time (Node's start-up included, as a
 * user waits for it) and its stdout. Only PATH and HOME come from this process's environment.
 */
export async function runPgtwin(
  project: CliProject,
  args: string[],
): Promise<{ wallMs: number; stdout: string; code: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: project.rootDir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...project.env },
        maxBuffer: 16 * 2 ** 20,
      },
      (error, stdout) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ wallMs: performance.now() - started, stdout, code });
      },
    );
  });
}

/** `pgtwin setup --json` in `project`; throws with the command's message when it fails. */
export async function pgtwinSetup(
  project: CliProject,
  env: Record<string, string> = {},
): Promise<{ wallMs: number; document: SetupDocument }> {
  const { wallMs, stdout, code } = await runPgtwin({ ...project, env: { ...project.env, ...env } }, [
    'setup',
    '--json',
  ]);
  let document: SetupDocument;
  try {
    document = JSON.parse(stdout) as SetupDocument;
  } catch {
    throw new Error(`pgtwin setup exited with ${code} and no JSON document: ${stdout.slice(0, 500)}`);
  }
  if (!document.ok) throw new Error(`pgtwin setup failed (exit ${code}): ${document.message ?? stdout}`);
  return { wallMs, document };
}

/** The phases of a setup document as `{ name: ms }` (a phase run twice adds up). */
export function phaseTimes(document: SetupDocument): Record<string, number> {
  const times: Record<string, number> = {};
  for (const phase of document.phases ?? []) times[phase.name] = (times[phase.name] ?? 0) + phase.ms;
  return times;
}

/** Whether the setup reused a template rather than building one. */
export function reusedTemplate(document: SetupDocument): boolean {
  return (document.phases ?? []).some(
    (phase) => phase.name === 'template' && /reused/.test(phase.detail ?? ''),
  );
}
