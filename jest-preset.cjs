// Jest preset of pgtwin (`preset: 'pgtwin'`): the compiled global setup, teardown and per-test setup file.
const path = require('node:path');

const dist = path.join(__dirname, 'dist', 'jest');

module.exports = {
  testEnvironment: 'node',
  globalSetup: path.join(dist, 'global-setup.cjs'),
  globalTeardown: path.join(dist, 'global-teardown.cjs'),
  setupFilesAfterEnv: [path.join(dist, 'setup.cjs')],
};
