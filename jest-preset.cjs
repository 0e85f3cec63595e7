// Jest preset of pgtwin (`preset: 'pgtwin'`): the compiled global setup, teardown and per-test setup file.
// Assigned one by one so Node's CommonJS lexer sees the names for `import { globalSetup } from ...` too.
const path = require('node:path');

const dist = path.join(__dirname, 'dist', 'jest');

exports.testEnvironment = 'node';
exports.globalSetup = path.join(dist, 'global-setup.cjs');
exports.globalTeardown = path.join(dist, 'global-teardown.cjs');
exports.setupFilesAfterEnv = [path.join(dist, 'setup.cjs')];
