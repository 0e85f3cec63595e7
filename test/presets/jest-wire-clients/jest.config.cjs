// Jest fixture of the conformance cases for wire clients: postgres.js and a node-postgres client in a child
// process reach the test transaction through TEST_DATABASE_URL (the worker's endpoint), beside in-process pg.
module.exports = {
  preset: 'pgtwin',
  testMatch: ['<rootDir>/test/**/*.test.cjs'],
  transform: {},
  testTimeout: 120_000,
};
