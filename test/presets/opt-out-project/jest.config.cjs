// The project opt-out.test.ts runs with Jest (and Vitest, vitest.config.ts).
module.exports = {
  preset: 'pgtwin',
  testMatch: ['<rootDir>/test/**/*.spec.cjs'],
  transform: {},
  globals: { pgtwin: { seeds: 'seeds/seed_data.json' } },
  testTimeout: 120_000,
};
