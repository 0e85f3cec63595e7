import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { endSoon } from '../../src/connection/end-soon.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('endsoon');

describe('endSoon', () => {
  it('ignores the error of a backend terminated before it read the goodbye, as a drop WITH (FORCE) does', async () => {
    const { url } = await scratch.database();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // What the process would do with an 'error' event nobody listens to: EventEmitter throws it.
    const emitted: string[] = [];
    let uncaught: unknown;
    const emit = client.emit.bind(client);
    client.emit = ((event: string, ...args: unknown[]) => {
      if (event !== 'error') return emit(event, ...args);
      emitted.push((args[0] as Error).message);
      try {
        return emit(event, ...args);
      } catch (error) {
        uncaught = error;
        return false;
      }
    }) as typeof client.emit;
    // The server's FATAL waits in the socket until the client has said goodbye: the race made certain.
    const stream = (client as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;
    stream.pause();
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    endSoon(client);
    stream.resume();
    await new Promise((resolve) => client.once('end', resolve));

    expect(emitted).toEqual(['terminating connection due to administrator command']);
    expect(uncaught).toBeUndefined();
  });
});
