import { describe, expect, it } from 'vitest';
import { isLocalHost, sameAddress, sameAddressByName } from '../../src/connection/same-address.js';

describe('one loopback rule', () => {
  it('counts localhost, 127.0.0.0/8, ::1 and a Unix socket directory as this machine', () => {
    for (const host of [
      'localhost',
      'LOCALHOST',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      '/var/run/postgresql',
    ])
      expect(isLocalHost(host), host).toBe(true);
    for (const host of ['db.example.com', '10.0.0.1', '128.0.0.1', 'localhost.example.com'])
      expect(isLocalHost(host), host).toBe(false);
  });

  it('takes a socket directory and a loopback address on the same port as the same server', async () => {
    const socket = { host: '/var/run/postgresql', port: 5432 };
    expect(sameAddressByName(socket, { host: '127.0.0.1', port: 5432 })).toBe(true);
    expect(sameAddressByName(socket, { host: 'localhost', port: '5432' })).toBe(true);
    expect(sameAddressByName(socket, { host: 'localhost', port: 5433 })).toBe(false);
    expect(sameAddressByName(socket, { host: 'db.example.com', port: 5432 })).toBe(false);
    expect(await sameAddress(socket, { host: '::1', port: 5432 })).toBe(true);
    expect(
      await sameAddress({ host: 'DB.example.com', port: 5432 }, { host: 'db.example.com', port: 5432 }),
    ).toBe(true);
  });
});
