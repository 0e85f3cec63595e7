/**
 * Every code block of README.md is checked here, so the front door cannot drift from the code. The rule per
 * kind of block:
 * - `ts` / `js`: type-checked as its own module against the built package, imported by its public name
 *   (`pgtwin`, `pgtwin/vitest`, ...) as a user would. A block whose first line is a `// path` comment is
 *   written under that file name, and the other named blocks are placed beside it, so `./factories.js`
 *   resolves as in a project.
 * - `json` / `jsonc`: parsed (comments stripped from `jsonc`); the seed example is planned by `doctor`'s
 *   seed check elsewhere, here it must be valid JSON with pgtwin's directives.
 * - `sh`: every `npx pgtwin …` line is parsed by the real command line (its options and command must exist),
 *   and every `npm run X` names a script of package.json.
 * - `sql`: the role teardown runs for real against a role pgtwin provisioned.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { provisionTestDatabase } from 'pgtwin';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../cli/run-cli.js';
import { testConfig } from '../helpers/config.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const root = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

interface Block {
  line: number;
  lang: string;
  code: string;
}

function blocks(): Block[] {
  const lines = readme.split('\n');
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.startsWith('```')) end++;
    found.push({ line: i + 1, lang: open[1]!, code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return found;
}

const all = blocks();
const of = (...langs: string[]) => all.filter((block) => langs.includes(block.lang));
const named = (block: Block) => /^\/\/ ([\w./-]+\.(?:ts|js|cjs))\b/.exec(block.code)?.[1];

const scratch = useScratch('readme');
const work = path.join(root, '.pgtwin', `readme-snippets-${process.pid}`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('README.md code blocks', () => {
  it('has the blocks this test knows how to check, and no other kind', () => {
    const kinds = new Set(all.map((block) => block.lang));
    for (const kind of kinds) expect(['', 'ts', 'js', 'json', 'jsonc', 'sh', 'sql']).toContain(kind);
    expect(of('ts', 'js').length).toBeGreaterThan(5);
  });

  it('every ts and js block type-checks against the built package', () => {
    rmSync(work, { recursive: true, force: true });
    const files: string[] = [];
    const namedBlocks = of('ts', 'js').filter(named);
    for (const block of of('ts', 'js')) {
      const dir = path.join(work, `line-${block.line}`);
      mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
      writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
      // The package by its own name, as an application that installed it resolves it.
      symlinkSync(root, path.join(dir, 'node_modules', 'pgtwin'), 'dir');
      const ownName = named(block);
      for (const other of namedBlocks) {
        if (other === block || named(other) === ownName) continue;
        writeFileSync(path.join(dir, path.basename(named(other)!)), other.code);
      }
      const file = path.join(
        dir,
        ownName ? path.basename(ownName).replace(/\.js$/, '.cjs') : `snippet.${block.lang}`,
      );
      writeFileSync(file, block.code);
      files.push(file);
    }
    const program = ts.createProgram(files, {
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      allowJs: true,
      types: ['node'],
      typeRoots: [path.join(root, 'node_modules/@types')],
      // Snippets show a use, not a whole program: values they compute need not be read afterwards.
      noUnusedLocals: false,
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter(
        (diagnostic) =>
          diagnostic.file === undefined || files.includes(path.resolve(diagnostic.file.fileName)),
      )
      .map((diagnostic) => {
        const where = diagnostic.file
          ? `README.md block at line ${path.basename(path.dirname(diagnostic.file.fileName)).slice('line-'.length)}`
          : 'program';
        return `${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
      });
    expect(problems).toEqual([]);
  });

  it('every json block parses, jsonc without its comments', () => {
    for (const block of of('json', 'jsonc')) {
      const text = block.lang === 'jsonc' ? block.code.replace(/\s\/\/.*$/gm, '') : block.code;
      expect(() => JSON.parse(text), `README.md block at line ${block.line}`).not.toThrow();
    }
  });

  it('every pgtwin command line in a sh block is accepted by the command line, every npm script exists', async () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: object }).scripts,
    );
    const run = promisify(execFile);
    for (const block of of('sh')) {
      for (const raw of block.code.split('\n')) {
        const line = raw
          .replace(/\s+#.*$/, '')
          .replace(/\s*(>|\|\|).*$/, '')
          .trim();
        for (const [, script] of line.matchAll(/npm run ([\w:-]+)/g)) expect(scripts).toContain(script);
        const command = /^npx pgtwin (.+)$/.exec(line);
        if (!command) continue;
        // --help makes the real parser check the command and every option, and stop before doing anything.
        const args = [...command[1]!.split(/\s+/), '--help'];
        const { stdout } = await run(CLI, args, { cwd: root, env: { ...process.env, NO_COLOR: '1' } });
        expect(stdout, `README.md line "${line}"`).toMatch(/Usage|pgtwin/);
      }
    }
  });

  it('the role teardown SQL drops a role pgtwin provisioned, in the order given', async () => {
    const [teardown] = of('sql').filter((block) => block.code.includes('DROP ROLE'));
    expect(teardown, 'the README shows how to drop the test role').toBeDefined();
    const role = scratch.roleName('runner');
    const database = scratch.databaseName('twin');
    const production = await scratch.database('prod');
    await provisionTestDatabase(
      await testConfig({
        production: { database: production.name },
        test: { database, user: role, password: 'pw' },
      }),
    );
    const sql = teardown!.code
      .replaceAll('contentgen_test_db', database)
      .replaceAll('test_runner_user', role);
    for (const statement of sql.split(/;\s*(?:--[^\n]*)?\n?/).filter((part) => part.trim() !== '')) {
      // REVOKE and DROP ROLE rewrite the parameter rights every role shares (pg_parameter_acl): another suite
      // provisioning on this server at the same moment makes them fail with "tuple concurrently updated".
      for (let attempt = 1; ; attempt++) {
        try {
          await adminQuery(statement);
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'XX000' || attempt === 5) throw error;
        }
      }
    }
    expect((await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount).toBe(0);
  });
});
