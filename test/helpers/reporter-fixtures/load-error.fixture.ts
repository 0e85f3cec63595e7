import { it } from 'vitest';

throw new Error('this file cannot be loaded');

it('is never collected', () => {});
