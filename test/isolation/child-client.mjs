// A client in another process: runs the statements its parent sends (IPC) with node-postgres on
// connections of its own to TEST_DATABASE_URL, so they reach the database the way an application server
// started by a test would.
import pg from 'pg';

const connections = new Map();

async function connection(id) {
  let client = connections.get(id);
  if (!client) {
    client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    client.on('error', () => undefined);
    connections.set(id, client);
    await client.connect();
  }
  return client;
}

process.on('message', async ({ id, connection: name, sql, params, release }) => {
  try {
    if (release) {
      await connections.get(name)?.end();
      connections.delete(name);
      process.send({ id });
      return;
    }
    const result = await (await connection(name)).query(sql, params);
    const results = Array.isArray(result) ? result : [result];
    const last = results[results.length - 1];
    process.send({ id, rows: last.rows, command: last.command });
  } catch (error) {
    process.send({
      id,
      error: { message: error.message, code: error.code, constraint: error.constraint },
    });
  }
});

process.on('disconnect', async () => {
  await Promise.all([...connections.values()].map((client) => client.end().catch(() => undefined)));
  process.exit(0);
});
