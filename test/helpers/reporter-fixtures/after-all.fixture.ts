import { afterAll, it } from 'vitest';

afterAll(() => {
  throw new Error('dropping the database failed');
});

it('passes', () => {});
