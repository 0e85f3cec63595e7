import { describe, expect, it } from 'vitest';
import { quietPoint, stillQuiet } from '../../src/connection/quiet-since.js';

// pg_current_snapshot() texts as the server prints them: xmin:xmax:running ids.
describe('a quiet point (nothing committed since a state was read)', () => {
  it('exists only when no transaction was running as the state was read', () => {
    expect(quietPoint('700:700:')).toEqual({ xmax: '700', own: [] });
    expect(quietPoint('698:700:698')).toBeUndefined();
  });

  it('holds while every id taken since is pgtwin’s own marker write or the stamp recording it', () => {
    const point = { xmax: '700', own: ['700', '701'] };
    expect(stillQuiet(point, '702', '703:703:')).toBe(true);
    expect(stillQuiet({ xmax: '700', own: [] }, '999', '700:700:')).toBe(true);
  });

  it('fails for any other id taken since, a transaction running now, or a stamp written again', () => {
    const point = { xmax: '700', own: ['700'] };
    expect(stillQuiet(point, '701', '703:703:')).toBe(false);
    expect(stillQuiet(point, '701', '701:702:701')).toBe(false);
    expect(stillQuiet(point, '702', '702:702:')).toBe(false);
    expect(stillQuiet(point, '701', '690:690:')).toBe(false);
  });

  it('compares the stamp’s 32-bit xmin with 64-bit ids across a wraparound epoch', () => {
    const epoch = 2n ** 32n;
    const point = { xmax: (epoch + 4n).toString(), own: [(epoch + 4n).toString()] };
    expect(stillQuiet(point, '5', `${epoch + 6n}:${epoch + 6n}:`)).toBe(true);
    expect(stillQuiet(point, '6', `${epoch + 6n}:${epoch + 6n}:`)).toBe(false);
  });
});
