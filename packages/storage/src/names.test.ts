import { describe, expect, it } from 'vitest';
import {
  assertBlobPath,
  assertContainerName,
  blobPathProblem,
  containerNameProblem,
  containerNameSchema,
} from './names.ts';

describe('container names', () => {
  it.each(['abc', 'bronze', 'a-b-c', 'x1', '123', 'a'.repeat(63)].filter((n) => n.length >= 3))('accepts %s', (n) => {
    expect(containerNameProblem(n)).toBeNull();
  });
  it.each([
    ['ab', /3-63 characters/],
    ['a'.repeat(64), /3-63 characters/],
    ['Bronze', /lower-case/],
    ['a--b', /single hyphens/],
    ['-ab', /start and end/],
    ['ab-', /start and end/],
    ['a_b', /lower-case/],
    ['a.b', /lower-case/],
    ['', /empty/],
  ])('rejects %j', (n, re) => {
    expect(containerNameProblem(n)).toMatch(re);
    expect(() => assertContainerName(n)).toThrow(expect.objectContaining({ code: 'STORAGE_INVALID_NAME' }));
  });
  it('trims in the zod schema and names the problem', () => {
    expect(containerNameSchema.parse('  bronze ')).toBe('bronze');
    const r = containerNameSchema.safeParse('Bad_Name');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toContain('"Bad_Name"');
  });
});

describe('blob paths', () => {
  it.each(['a.tif', 'dir/sub/file.TIF', 'spaces are ok.txt', 'ünïcode/名前.json', 'x'.repeat(1024)])(
    'accepts %j',
    (p) => {
      expect(blobPathProblem(p)).toBeNull();
      expect(assertBlobPath(p)).toBe(p);
    },
  );
  it.each([
    ['', /empty/],
    ['../etc/passwd', /"\.\." segment/],
    ['a/../b', /"\.\." segment/],
    ['a/./b', /"\." segment/],
    ['a//b', /empty segment/],
    ['/abs', /starts with \//],
    ['dir/', /ends with \//],
    ['a\\b', /backslash/],
    ['a\u0000b', /control character/],
    ['line\nbreak', /control character/],
    ['x'.repeat(1025), /max 1024/],
    [Array.from({ length: 255 }, () => 'a').join('/'), /max 254/],
  ])('rejects %j', (p, re) => {
    expect(blobPathProblem(p)).toMatch(re);
  });
  it('lets a prefix be empty or end with /', () => {
    expect(blobPathProblem('', { prefix: true })).toBeNull();
    expect(blobPathProblem('dir/sub/', { prefix: true })).toBeNull();
    expect(blobPathProblem('dir/../', { prefix: true })).toMatch(/".." segment/);
  });
});
