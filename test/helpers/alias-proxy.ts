import net from 'node:net';

/** Protocol 3.0 in a StartupMessage. */
const PROTOCOL_3 = 196608;
/** Startup-phase requests that share the StartupMessage framing (PostgreSQL protocol, "Message Formats"). */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

export interface AliasProxyOptions {
  /** The real server. */
  upstream: { host: string; port: number };
  /** `{ alias: database }`: a client asking for `alias` is connected to `database`, as a pooler's `[databases]` does. */
  aliases: Record<string, string>;
}

/** A running proxy; `close()` stops listening and destroys every socket. */
export interface StartedAliasProxy {
  readonly host: string;
  readonly port: number;
  /** Databases clients asked for, in order (after the alias map was applied: `asked → reached`). */
  readonly startups: readonly { asked: string; reached: string }[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A pgbouncer-style TCP proxy on 127.0.0.1 for tests: it reads each client's StartupMessage, rewrites the
 * `database` parameter through `aliases`, and pipes everything else unchanged both ways. SSL and GSSAPI
 * encryption requests are declined ('N'), so clients continue in plain text; CancelRequests are forwarded.
 *
 * @example
 * ```ts
 * await using proxy = await startAliasProxy({ upstream: { host: '127.0.0.1', port: 5432 }, aliases: { app_test: 'app' } });
 * ```
 */
export function startAliasProxy(options: AliasProxyOptions): Promise<StartedAliasProxy> {
  const sockets = new Set<net.Socket>();
  const startups: { asked: string; reached: string }[] = [];
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A peer that goes away mid-stream is normal for a proxy; the other side is closed with it.
    socket.on('error', () => socket.destroy());
  };

  const server = net.createServer((client) => {
    track(client);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 8) {
        const length = buffered.readInt32BE(0);
        if (length < 8 || length > 10_000) {
          client.destroy();
          return;
        }
        if (buffered.length < length) return;
        const code = buffered.readInt32BE(4);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          buffered = buffered.subarray(length);
          client.write('N');
          continue;
        }
        const first = code === PROTOCOL_3 ? rewriteStartup(buffered.subarray(0, length)) : undefined;
        if (first) startups.push({ asked: first.asked, reached: first.reached });
        // A CancelRequest (or an unknown protocol, which the server will refuse) goes through as it is.
        const message = first?.message ?? buffered.subarray(0, length);
        const rest = buffered.subarray(length);
        client.off('data', onData);
        client.pause();
        connectUpstream(Buffer.concat([message, rest]), code === CANCEL_REQUEST);
        return;
      }
    };

    const connectUpstream = (opening: Buffer, cancel: boolean) => {
      const upstream = net.connect(options.upstream.port, options.upstream.host);
      track(upstream);
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.once('connect', () => {
        upstream.write(opening);
        if (cancel) return;
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };

    const rewriteStartup = (message: Buffer) => {
      const parameters = parseParameters(message.subarray(8));
      const asked = parameters.get('database') ?? parameters.get('user') ?? '';
      const reached = options.aliases[asked] ?? asked;
      if (reached !== asked) parameters.set('database', reached);
      return { asked, reached, message: startupMessage(parameters) };
    };

    client.on('data', onData);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const close = () =>
        new Promise<void>((done) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => done());
        });
      resolve({ host: '127.0.0.1', port, startups, close, [Symbol.asyncDispose]: close });
    });
  });
}

/** `key\0value\0 ... \0` as a map, in order. */
function parseParameters(body: Buffer): Map<string, string> {
  const parameters = new Map<string, string>();
  const parts = body.toString('utf8').split('\0');
  for (let index = 0; index + 1 < parts.length && parts[index] !== ''; index += 2) {
    parameters.set(parts[index]!, parts[index + 1]!);
  }
  return parameters;
}

/** A protocol 3.0 StartupMessage carrying `parameters`, its length recomputed. */
function startupMessage(parameters: Map<string, string>): Buffer {
  const pairs = [...parameters].map(([key, value]) => `${key}\0${value}\0`).join('');
  const body = Buffer.from(`${pairs}\0`, 'utf8');
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + body.length, 0);
  header.writeInt32BE(PROTOCOL_3, 4);
  return Buffer.concat([header, body]);
}
