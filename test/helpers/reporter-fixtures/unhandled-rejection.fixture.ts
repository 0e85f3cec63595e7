import { it } from 'vitest';

it('passes, leaving a rejection nobody handles', async () => {
  void Promise.reject(new Error('nobody handled this rejection'));
  await new Promise((resolve) => setTimeout(resolve, 50));
});
