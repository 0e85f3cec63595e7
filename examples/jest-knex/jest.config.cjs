// Production comes from DB_HOST / DB_PORT / DB_NAME / DB_USER / DB_PASS, the test database from TEST_DB_*.
module.exports = {
  preset: 'pgtwin',
  testMatch: ['<rootDir>/test/**/*.test.cjs'],
  transform: {},
  globals: { pgtwin: { seeds: 'seeds/seed_data.json' } },
  // Jest's timeout bounds hooks too, and pgtwin's hooks create and drop databases: 5 s is short on busy CI.
  testTimeout: 120_000,
};
