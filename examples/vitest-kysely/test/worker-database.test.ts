import { expect, inject, it } from 'vitest';

// With several workers, each has its own copy of the test database (`<TEST_DB_NAME>_w<VITEST_POOL_ID>`).
it(`runs worker ${process.env.VITEST_POOL_ID} on ${process.env.TEST_DB_NAME}`, () => {
  expect(inject('pgtwin').database).toBe(process.env.TEST_DB_NAME);
});
