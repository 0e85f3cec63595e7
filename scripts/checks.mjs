// `npm test`'s steps before Vitest: the lint, and the build followed by the package check. The build's tsc
// type-checks the whole project (tests included) while it emits the package's declarations, so there is no
// separate type check: one TypeScript program instead of two (tsup's declaration bundling was a second one,
// about 18 CPU-seconds). The steps share nothing, so they run at once; each prints a line with its time, and
// its whole output (under its name, never interleaved) when it fails.
// Exits non-zero, naming the failed steps, when any fails; Vitest (run next by `npm test`) then does not start.
import { spawn } from 'node:child_process';

const STEPS = [
  ['lint', ['npm run -s lint']],
  ['build and type check, check:package', ['npm run -s build', 'npm run -s check:package']],
];

function run(command) {
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

const started = performance.now();
const results = await Promise.all(
  STEPS.map(async ([name, commands]) => {
    const began = performance.now();
    let output = '';
    for (const command of commands) {
      const result = await run(command);
      output += result.output;
      if (result.code !== 0) return { name, ok: false, output, ms: performance.now() - began };
    }
    return { name, ok: true, output, ms: performance.now() - began };
  }),
);
for (const { name, ok, output, ms } of results) {
  console.log(`checks: ${name} ${ok ? 'passed' : 'FAILED'} in ${(ms / 1000).toFixed(1)} s`);
  if (!ok && output.trim()) console.log(output.trimEnd().replace(/^/gm, `  ${name} | `));
}
const failed = results.filter((result) => !result.ok).map((result) => result.name);
console.log(
  `checks: ${failed.length === 0 ? 'all passed' : `failed: ${failed.join('; ')}`} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
