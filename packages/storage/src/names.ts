import { z } from 'zod';
import { StorageError } from './errors.ts';

// Azure container rules: 3-63 chars, lower-case letters, digits and single hyphens, starting
// and ending with a letter or digit.
const CONTAINER_RE = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;
// C0 and C1 control characters: Azure accepts some of them in names but they break URLs,
// logs and /vsiaz/ paths.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `name` is not a valid container name, or null when it is. */
export function containerNameProblem(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'container name is empty';
  if (name.length < 3 || name.length > 63)
    return `container name ${JSON.stringify(name)} must be 3-63 characters long (has ${name.length})`;
  if (!CONTAINER_RE.test(name)) {
    return `container name ${JSON.stringify(name)} may only contain lower-case letters, digits and single hyphens, and must start and end with a letter or digit`;
  }
  return null;
}

/**
 * Why `path` is not a valid blob path (or, with `prefix: true`, a listing prefix), or null.
 * Beyond Azure's own limits (1-1024 characters, at most 254 segments) this refuses `.`/`..`
 * segments, empty segments, a leading `/`, backslashes and control characters: each makes the
 * same blob reachable under two names or escapes a prefix when paths are joined.
 */
export function blobPathProblem(path: string, options: { prefix?: boolean } = {}): string | null {
  const what = options.prefix ? 'blob prefix' : 'blob path';
  if (typeof path !== 'string') return `${what} must be a string`;
  if (path.length === 0) return options.prefix ? null : 'blob path is empty';
  if (path.length > 1024) return `${what} is ${path.length} characters long (max 1024)`;
  if (CONTROL_RE.test(path)) return `${what} ${JSON.stringify(path)} contains a control character`;
  if (path.includes('\\')) return `${what} ${JSON.stringify(path)} contains a backslash; use /`;
  if (path.startsWith('/')) return `${what} ${JSON.stringify(path)} starts with /`;
  const segments = path.split('/');
  // A prefix may end with '/' (a virtual folder), a blob may not.
  if (options.prefix && segments.at(-1) === '') segments.pop();
  if (segments.length > 254) return `${what} has ${segments.length} segments (max 254)`;
  for (const s of segments) {
    if (s === '') return `${what} ${JSON.stringify(path)} has an empty segment (//) or ends with /`;
    if (s === '.' || s === '..') return `${what} ${JSON.stringify(path)} contains a "${s}" segment`;
  }
  return null;
}

/** Throws `STORAGE_INVALID_NAME` unless `name` is a valid container name; returns it. */
export function assertContainerName(name: string): string {
  const problem = containerNameProblem(name);
  if (problem) throw new StorageError('STORAGE_INVALID_NAME', `Invalid ${problem}`);
  return name;
}

/** Throws `STORAGE_INVALID_NAME` unless `path` is a valid blob path; returns it. */
export function assertBlobPath(path: string, options: { prefix?: boolean } = {}): string {
  const problem = blobPathProblem(path, options);
  if (problem) throw new StorageError('STORAGE_INVALID_NAME', `Invalid ${problem}`);
  return path;
}

/** zod schema for a container name (trimmed), for job parameters. */
export const containerNameSchema = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = containerNameProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** zod schema for a blob path. */
export const blobPathSchema = z.string().superRefine((v, ctx) => {
  const problem = blobPathProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** zod schema for a listing prefix (may be empty, may end with `/`). */
export const blobPrefixSchema = z.string().superRefine((v, ctx) => {
  const problem = blobPathProblem(v, { prefix: true });
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
