// Jest transformer for the ES modules the fixture loads (the TypeScript test modules of test/isolation and the
// ES-only packages they need): esbuild strips the types and turns each module into CommonJS, file by file;
// `import.meta.url` becomes the file's own URL, which CommonJS lacks.
const { transformSync } = require('esbuild');
const { pathToFileURL } = require('node:url');

module.exports = {
  process(source, file) {
    const { code, map } = transformSync(source, {
      loader: file.endsWith('.ts') ? 'ts' : 'js',
      format: 'cjs',
      target: 'node20',
      sourcefile: file,
      sourcemap: 'external',
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(file).href) },
    });
    return { code, map };
  },
};
