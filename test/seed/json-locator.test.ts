import { describe, expect, test } from 'vitest';
import { JsonLocator } from '../../src/seed/json-locator.js';
import { formatJsonPath } from '../../src/seed/json-path.js';

const TEXT = '{\n  "public.projects": [\n    { "slug": "a" },\n    { "nmae": "b", "tags": [1, 2] }\n  ]\n}';

describe('JsonLocator', () => {
  test('locates a property at its name and an array element at its start', () => {
    const locator = new JsonLocator(TEXT);

    expect(locator.locate(['public.projects', 1, 'nmae'])).toMatchObject({ line: 4, column: 7 });
    expect(locator.locate(['public.projects', 1, 'tags', 1])).toMatchObject({ line: 4, column: 32 });
    expect(locator.locate(['public.projects', 0])).toMatchObject({ line: 3, column: 5 });
    expect(locator.locate(['public.projects', 2])).toBeUndefined();
  });

  test.each([
    ['{"a": 1,}', "Trailing ',' before '}' is not allowed in JSON", 1, 9],
    ['{\n  "a": tru\n}', "Expected a value but found 't'", 2, 8],
    ['[1, 2', "Expected ',' or ']' after array element but found the end of the file", 1, 6],
    ['{"a": "x\ny"}', 'Unescaped control character in string (use \\n, \\t, ...)', 1, 9],
    ['{"a": 1} 2', "Unexpected '2' after the end of the JSON value", 1, 10],
    ['{"a": "open', 'Unterminated string', 1, 7],
  ])('reports %j as "%s" at %i:%i', (text, message, line, column) => {
    expect(new JsonLocator(text).syntaxError()).toMatchObject({ message, position: { line, column } });
  });

  test('findUnsafe reports the first forbidden key or too deep container with its path, across escaped quotes', () => {
    const keys = new Set(['__proto__']);
    const text = '{"a": ["x\\"", "\\\\", {"b\\"": 1, "__proto__": 2}]}';
    expect(new JsonLocator(text).findUnsafe(10, keys)).toEqual({
      kind: 'key',
      key: '__proto__',
      path: ['a', 2, '__proto__'],
      position: { offset: text.indexOf('"__proto__"'), line: 1, column: text.indexOf('"__proto__"') + 1 },
    });
    expect(new JsonLocator(text).findUnsafe(2, keys)).toMatchObject({ kind: 'depth', path: ['a', 2] });
    expect(new JsonLocator(TEXT).findUnsafe(4, keys)).toBeUndefined();
    expect(new JsonLocator('['.repeat(100_000)).findUnsafe(100, keys)).toMatchObject({ kind: 'depth' });
  });

  test('finds no syntax error in valid JSON, with or without a byte-order mark', () => {
    expect(new JsonLocator(TEXT).syntaxError()).toBeUndefined();
    expect(new JsonLocator(`\uFEFF${TEXT}`).syntaxError()).toBeUndefined();
  });
});

test('formatJsonPath writes identifier properties with a dot and others in brackets', () => {
  expect(formatJsonPath(['public.projects', 1, 'nmae'])).toBe('$["public.projects"][1].nmae');
  expect(formatJsonPath([])).toBe('$');
});
