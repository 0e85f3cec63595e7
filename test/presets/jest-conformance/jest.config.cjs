// Jest project that runs the isolation conformance cases (test/isolation/conformance-cases.ts) with pgtwin's
// preset, through every client kind. Production holds only the cases' schema: nothing is mirrored.
module.exports = {
  preset: 'pgtwin',
  testMatch: ['<rootDir>/test/**/*.test.cjs'],
  transform: { '\\.[jt]s$': '<rootDir>/esbuild-transform.cjs' },
  // slonik requires p-limit, an ES module only: transformed to CommonJS as Jest's docs advise.
  transformIgnorePatterns: ['^(?!.*/node_modules/(p-limit|yocto-queue)/).*/node_modules/'],
  // The TypeScript sources import each other as `./name.js`, as Node's ES modules want.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globals: { pgtwin: { mirror: { full: [], structureOnly: [] } } },
};
