import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'examples/**/node_modules/**', 'coverage/**', 'bench/out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The database lifecycle has one interface, TwinDatabases: what lies behind it is not imported elsewhere.
    files: ['src/**/*.ts'],
    ignores: [
      'src/provision/twin-databases.ts',
      'src/provision/database-lifecycle.ts',
      'src/provision/template-store.ts',
      'src/provision/template-locks.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/database-lifecycle.js', '**/template-store.js', '**/template-locks.js'],
              message: "Create, copy, lease, list and drop pgtwin's databases through TwinDatabases.",
            },
            {
              group: ['**/test-marker.js'],
              importNames: ['readMarker', 'writeMarker', 'listStamped'],
              message: 'Read, stamp and list markers through TwinDatabases.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
