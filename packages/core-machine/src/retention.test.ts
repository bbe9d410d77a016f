import { describe, expect, it } from 'vitest';
import { parseDuration } from './retention.ts';

describe('parseDuration', () => {
  it('reads s, m, h, d, w and plain seconds', () => {
    expect(['90', '90s', '30m', '12h', '7d', '2w', ' 1.5h '].map(parseDuration)).toEqual([
      90, 90, 1800, 43_200, 604_800, 1_209_600, 5400,
    ]);
  });
  it('refuses what is not a duration', () => {
    expect(['', 'last week', '-1d', '7 days', 'd'].map(parseDuration)).toEqual([null, null, null, null, null]);
  });
});
