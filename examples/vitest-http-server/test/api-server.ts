import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The API server running in a child process, and how to call it. */
export interface ApiServer {
  readonly url: string;
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('../src/server.mjs', import.meta.url));

/**
 * Starts the API server with this worker's environment: inside a test file, pgtwin points TEST_DATABASE_URL
 * at its endpoint, so what the server writes during a test is rolled back with the test.
 */
export async function startApiServer(): Promise<ApiServer> {
  const child: ChildProcess = spawn(process.execPath, [SERVER], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (\d+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the API server exited with code ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
