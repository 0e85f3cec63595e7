import { describe, expect, it } from 'vitest';
import { ClientSettings } from '../../src/isolation/client-settings.js';
import { settingsTouchedBy } from '../../src/isolation/settings-touched.js';

const touched = (text: string) => {
  const { names, reset, local, all } = settingsTouchedBy(text);
  return { names: [...names], reset: [...reset], local: [...local], all };
};

describe('settingsTouchedBy', () => {
  it('reads the parameter of each SET and RESET form, folded as the server compares names', () => {
    expect(touched('SET search_path TO app').names).toEqual(['search_path']);
    expect(touched("/* app */ SET SESSION TimeZone = 'UTC'").names).toEqual(['timezone']);
    expect(touched("SET TIME ZONE 'UTC'; SET SCHEMA 'app'; SET ROLE reader").names).toEqual([
      'timezone',
      'search_path',
      'role',
    ]);
    expect(touched('SET SESSION AUTHORIZATION DEFAULT').names).toEqual(['session_authorization']);
    expect(touched('SET "MyApp".Tenant = 1').names).toEqual(['myapp.tenant']);
    expect(touched('RESET lock_timeout')).toMatchObject({ names: ['lock_timeout'], reset: ['lock_timeout'] });
  });

  it('tells SET LOCAL and set_config(..., true) from session-level ones', () => {
    expect(touched('SET LOCAL statement_timeout = 100').local).toEqual(['statement_timeout']);
    expect(
      touched("SELECT set_config('app.tenant', $1, true), set_config('app.user', 'a, b', false)"),
    ).toMatchObject({
      names: ['app.tenant', 'app.user'],
      local: ['app.tenant'],
    });
  });

  it('RESET ALL and DISCARD ALL touch everything; SET TRANSACTION and SET CONSTRAINTS nothing', () => {
    expect(touched('RESET ALL').all).toBe(true);
    expect(touched('DISCARD ALL').all).toBe(true);
    expect(touched('SET TRANSACTION READ ONLY; SET CONSTRAINTS ALL DEFERRED')).toMatchObject({
      names: [],
      all: false,
    });
    expect(touched("SELECT 'SET search_path TO x'")).toMatchObject({ names: [], all: false });
  });
});

describe('ClientSettings.fromStartup', () => {
  it('expands options as the server does and leaves out what is not a setting', () => {
    const settings = ClientSettings.fromStartup({
      user: 'u',
      database: 'd',
      client_encoding: 'UTF8',
      TimeZone: 'UTC',
      fallback_application_name: 'fallback',
      options: '-c search_path=a\\,\\ b -cwork_mem=8MB --lock-timeout=5s',
    });
    expect(Object.fromEntries(settings.startup)).toEqual({
      timezone: 'UTC',
      application_name: 'fallback',
      search_path: 'a, b',
      work_mem: '8MB',
      lock_timeout: '5s',
    });
    expect(Object.fromEntries(new ClientSettings().startup)).toEqual({ application_name: '' });
  });
});
