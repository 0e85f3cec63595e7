// The Jest half of the project concurrency.test.ts runs through the real Jest.
module.exports = {
  preset: 'pgtwin',
  testMatch: ['<rootDir>/test/**/*.jest.cjs'],
  transform: {},
  globals: { pgtwin: { seeds: 'seeds/seed_data.json' } },
  testTimeout: 120_000,
};
