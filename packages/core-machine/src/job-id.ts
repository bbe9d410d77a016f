import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every depth; `undefined` members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Default job id: sha256 of canonical `{type, parameters}` with excluded keys removed. */
export function defaultJobId(
  type: string,
  params: Record<string, unknown>,
  excludeKeys: readonly string[] = [],
): string {
  const kept = Object.fromEntries(Object.entries(params).filter(([k]) => !excludeKeys.includes(k)));
  return sha256Hex(canonicalJson({ type, parameters: kept }));
}

/** Task id: the first 32 hex characters of sha256(job id | stage index | key). */
export function taskId(jobId: string, stageIndex: number, key: string): string {
  return sha256Hex(`${jobId}|s${stageIndex}|${key}`).slice(0, 32);
}
