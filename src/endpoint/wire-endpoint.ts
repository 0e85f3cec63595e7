import net from 'node:net';
import pg from 'pg';
import { exemptFromIsolation } from '../isolation/exemption.js';
import { clientInternals, onParameterStatus } from '../isolation/pg-internals.js';
import type { TestSession } from '../isolation/test-session.js';
import { ScramVerifier } from './scram-verifier.js';
import { WireConnection } from './wire-connection.js';

/** Where the endpoint listens. */
export interface EndpointAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * A PostgreSQL wire-protocol server on 127.0.0.1 (a free port) in front of a test session: any client, in
 * any process, that connects to it runs its statements inside the session's test transaction, beside the
 * in-process `pg` clients the session takes over. It accepts the test role and database only.
 *
 * @example
 * const endpoint = await WireEndpoint.start(session, { connectionString: process.env.TEST_DATABASE_URL });
 * // postgres(`postgres://user@127.0.0.1:${endpoint.address.port}/db`) now shares the test transaction
 * await endpoint.close();
 */
export class WireEndpoint {
  private readonly connections = new Set<WireConnection>();
  private parameters: Promise<Record<string, string>> | undefined;
  /** The test role, as node-pg resolves it from the configuration and the environment. */
  private readonly user: string;
  private readonly verifier: ScramVerifier | undefined;

  private constructor(
    private readonly server: net.Server,
    private readonly session: TestSession,
    private readonly config: pg.ClientConfig,
    readonly address: EndpointAddress,
  ) {
    const params = clientInternals(new pg.Client(config)).connectionParameters;
    this.user = params.user;
    this.verifier =
      typeof params.password === 'string' && params.password !== ''
        ? ScramVerifier.derive(params.password)
        : undefined;
  }

  static async start(session: TestSession, config: pg.ClientConfig): Promise<WireEndpoint> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    // Tests end before the process does; an idle endpoint must not keep a worker alive.
    server.unref();
    const { port } = server.address() as net.AddressInfo;
    const endpoint = new WireEndpoint(server, session, config, { host: '127.0.0.1', port });
    server.on('connection', (socket) => endpoint.accept(socket));
    return endpoint;
  }

  /** Stops listening and closes every client connection. */
  async close(): Promise<void> {
    for (const connection of this.connections) connection.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const connection = new WireConnection(
      socket,
      {
        session: this.session,
        database: this.session.target.database,
        user: this.user,
        verifier: this.verifier,
        serverParameters: () => (this.parameters ??= this.readServerParameters()),
      },
      (processId, secretKey) => {
        for (const other of this.connections)
          if (other.processId === processId && other.secretKey === secretKey) other.cancel();
      },
    );
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  /** The ParameterStatus values the server sends at startup, from a connection of pgtwin's own. */
  private async readServerParameters(): Promise<Record<string, string>> {
    const probe = exemptFromIsolation(new pg.Client(this.config));
    const parameters: Record<string, string> = {};
    onParameterStatus(probe, (name, value) => {
      parameters[name] = value;
    });
    await probe.connect();
    await probe.end();
    return parameters;
  }
}
