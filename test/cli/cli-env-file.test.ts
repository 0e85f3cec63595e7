import { describe, expect, it } from 'vitest';
import { cliEnv, emptyDir, runCli } from './run-cli.js';

describe('pgtwin --env-file', () => {
  it('reports a missing env file as a configuration error (exit 2) naming the file and the fix', async () => {
    const cwd = emptyDir();
    const result = await runCli(['doctor', '--env-file', 'missing.env', '--json'], {
      env: cliEnv({}),
      cwd,
      asCommand: true,
    });
    expect(result.stderr).not.toContain('node: missing.env: not found');
    expect(result.code).toBe(2);
    const json = result.json<{ checks: { name: string; status: string; message: string }[] }>();
    const config = json.checks.find((check) => check.name === 'config')!;
    expect(config.status).toBe('fail');
    expect(config.message).toContain(`${cwd}/missing.env does not exist`);
    expect(config.message).toContain('--env-file');
  });

  it('gives the same error for the other commands', async () => {
    const result = await runCli(['setup', '--env-file=missing.env'], { env: cliEnv({}), asCommand: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /pgtwin setup: The env file .*missing\.env does not exist\. Create it, or fix the path given to --env-file/,
    );
  });
});
