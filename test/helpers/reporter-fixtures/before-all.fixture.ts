import { beforeAll, describe, it } from 'vitest';

describe('a suite whose setup fails', () => {
  beforeAll(() => {
    throw new Error('creating the database failed');
  });

  it('never runs', () => {});
});
