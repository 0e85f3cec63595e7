import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const VITEST_TIMEOUT_MS = 180_000;

/**
 * Runs an example suite through the real Vitest binary, the way a user runs it, with `env` as its whole
 * environment, and reads Vitest's JSON report. Resolves to `{ code, ms, output, tests }`, `tests` being
 * `{ file, title, status }` in the order Vitest reports them.
 */
export async function runExample({ root, example, env, signal }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgtwin-demo-'));
  const report = path.join(dir, 'report.json');
  // Removed on exit too: an interrupted demo exits without unwinding.
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanUp);
  const began = performance.now();
  try {
    const { code, output } = await run(
      process.execPath,
      [
        path.join(root, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--root',
        example,
        '--reporter=json',
        `--outputFile=${report}`,
      ],
      { cwd: root, env, signal },
    );
    const ms = Math.round(performance.now() - began);
    const json = await readFile(report, 'utf8').then(JSON.parse, () => undefined);
    const tests = (json?.testResults ?? []).flatMap((file) =>
      file.assertionResults.map((test) => ({
        file: path.relative(root, file.name),
        title: test.title,
        status: test.status,
      })),
    );
    return { code, ms, output, tests, reported: json !== undefined };
  } finally {
    process.removeListener('exit', cleanUp);
    cleanUp();
  }
}

function run(command, args, { cwd, env, signal }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], signal });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGTERM'), VITEST_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, killedBy) => {
      clearTimeout(timer);
      resolve({ code: code ?? (killedBy ? 1 : 0), output });
    });
  });
}
