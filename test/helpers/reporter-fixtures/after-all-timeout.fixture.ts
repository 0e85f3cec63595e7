import { afterAll, it } from 'vitest';

// The reported symptom: an afterAll that outlives its hook timeout, after every test passed.
afterAll(() => new Promise((resolve) => setTimeout(resolve, 2_000)), 50);

it('passes', () => {});
