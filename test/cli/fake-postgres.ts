import { createServer, type Server, type Socket } from 'node:net';

/**
 * A stand-in PostgreSQL server that asks every login for a password and rejects it as a real server
 * does (SQLSTATE 28P01). The suite's server trusts every local login, so it cannot reject a wrong password.
 */
export async function startPasswordRejectingServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (data) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          buffer = buffer.subarray(length);
          if (code === 80877103) {
            socket.write('N'); // SSLRequest: no SSL here
            continue;
          }
          started = true;
          const authentication = Buffer.alloc(9);
          authentication.write('R', 0);
          authentication.writeInt32BE(8, 1);
          authentication.writeInt32BE(3, 5); // AuthenticationCleartextPassword
          socket.write(authentication);
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < length + 1) return;
        buffer = buffer.subarray(length + 1);
        const fields = [
          ['S', 'FATAL'],
          ['V', 'FATAL'],
          ['C', '28P01'],
          ['M', 'password authentication failed for user'],
        ]
          .map(([type, value]) => `${type}${value}\0`)
          .join('');
        const body = Buffer.from(`${fields}\0`);
        const header = Buffer.alloc(5);
        header.write('E', 0);
        header.writeInt32BE(body.length + 4, 1);
        socket.end(Buffer.concat([header, body]));
        return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
