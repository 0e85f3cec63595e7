import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that counts round trips: every simple `Query` and every `Sync` a
 * client sends ends one exchange the client waits for. Point a connection at `port` instead of the server.
 */
export interface RoundTripProxy {
  readonly port: number;
  /** Round trips since the last reset. */
  count(): number;
  /**
   * Times since the last reset the client sent again after the server had answered: the round trips it
   * waited for. Unlike {@link count}, messages pipelined in one write (a Query and the next Sync) count once.
   */
  turns(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startRoundTripProxy(target: { host: string; port: number }): Promise<RoundTripProxy> {
  let trips = 0;
  let turns = 0;
  const sockets = new Set<net.Socket>();
  // Without TCP_NODELAY, a response the server flushes in two writes (one per ReadyForQuery) waits for a
  // delayed ACK in the proxy, adding milliseconds that no client on a direct connection would see.
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ port: target.port, host: target.host, noDelay: true });
    sockets.add(client).add(upstream);
    let pending = Buffer.alloc(0);
    let started = false;
    let answered = true;
    client.on('data', (chunk: Buffer) => {
      if (answered && started) turns++;
      answered = false;
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          // Startup (or SSL/cancel request): length-prefixed, no type byte.
          if (pending.length < 4) break;
          const length = pending.readInt32BE(0);
          if (pending.length < length) break;
          pending = pending.subarray(length);
          started = true;
          continue;
        }
        if (pending.length < 5) break;
        const length = pending.readInt32BE(1);
        if (pending.length < length + 1) break;
        const type = String.fromCharCode(pending[0]!);
        if (type === 'Q' || type === 'S') trips++;
        pending = pending.subarray(length + 1);
      }
      upstream.write(chunk);
    });
    upstream.on('data', () => (answered = true));
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    count: () => trips,
    turns: () => turns,
    reset: () => void (trips = turns = 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
