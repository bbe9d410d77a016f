import type { JobView, StageView, TaskView, JobEvent } from '@coremachine/core-machine';

const COLORS: Record<string, string> = {
  completed: '\x1b[32m',
  completed_with_errors: '\x1b[33m',
  failed: '\x1b[31m',
  cancelled: '\x1b[35m',
  processing: '\x1b[36m',
  queued: '\x1b[90m',
  pending: '\x1b[90m',
};
const RESET = '\x1b[0m';

export function status(s: string, color = process.stdout.isTTY): string {
  return color ? `${COLORS[s] ?? ''}${s}${RESET}` : s;
}

export function progressBar(stage: StageView, width = 30): string {
  const total = Math.max(stage.total, 1);
  const done = Math.round((width * stage.completed) / total);
  const bad = Math.min(width - done, Math.round((width * stage.failed) / total));
  const bar = '█'.repeat(done) + '▓'.repeat(bad) + '░'.repeat(Math.max(0, width - done - bad));
  return `${stage.name.padEnd(16)} [${bar}] ${String(stage.completed).padStart(5)}/${stage.total}${stage.failed ? ` (${stage.failed} failed)` : ''} ${status(stage.status)}`;
}

export function jobSummary(job: JobView): string {
  const lines = [
    `${job.id}  ${job.type}  ${status(job.status)}  stage ${job.currentStage}/${job.totalStages}`,
    ...job.stages.flatMap((s) => ['  ' + progressBar(s), ...(s.waiting ? [`    waiting: ${s.waiting.summary}`] : [])]),
  ];
  if (job.error)
    lines.push(
      `  error: ${job.error.code}: ${job.error.message}${job.error.taskId ? ` (task ${job.error.taskId}${job.error.stage ? `, stage ${job.error.stage}` : ''})` : ''}`,
    );
  if (job.result !== null && job.result !== undefined)
    lines.push(`  result: ${JSON.stringify(job.result, null, 2).replace(/\n/g, '\n  ')}`);
  return lines.join('\n');
}

export function table(rows: string[][]): string {
  const widths =
    rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').replace(/\x1b\[\d+m/g, '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c + ' '.repeat(Math.max(0, (widths[i] ?? 0) - c.replace(/\x1b\[\d+m/g, '').length)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function taskRow(t: TaskView): string[] {
  return [
    t.stageName,
    t.key,
    status(t.status),
    `${t.attempts}/${t.maxAttempts}`,
    t.error ? `${t.error.code}: ${t.error.message}`.slice(0, 100) : '',
  ];
}

export function eventRow(e: JobEvent): string[] {
  return [e.at, e.kind, e.stage ? `stage ${e.stage}` : '', e.message ?? ''];
}

interface PropSchema {
  type?: string | string[];
  default?: unknown;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: PropSchema[];
  minimum?: number;
  maximum?: number;
  items?: PropSchema;
}

function kindOf(s: PropSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join('|');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf) return s.anyOf.map(kindOf).join(' or ');
  const type = Array.isArray(s.type) ? s.type.join('|') : (s.type ?? 'any');
  const range =
    s.minimum !== undefined && s.maximum !== undefined && s.maximum < 1e15
      ? ` ${s.minimum}..${s.maximum}`
      : s.minimum !== undefined
        ? ` >=${s.minimum}`
        : s.maximum !== undefined
          ? ` <=${s.maximum}`
          : '';
  return type === 'array' && s.items ? `array of ${kindOf(s.items)}` : `${type}${range}`;
}

/**
 * One line per parameter of a job type's JSON Schema: `* name  kind  (default …)  description`,
 * `*` marking the required ones.
 */
export function parameterLines(schema: unknown): string[] {
  const root = (schema ?? {}) as { properties?: Record<string, PropSchema>; required?: string[] };
  const required = new Set(root.required ?? []);
  const rows = Object.entries(root.properties ?? {}).map(([name, s]) => [
    `${required.has(name) ? '*' : ' '} ${name}`,
    kindOf(s),
    s.default !== undefined ? `default ${JSON.stringify(s.default)}` : required.has(name) ? 'required' : 'optional',
    s.description ?? '',
  ]);
  return rows.length ? table(rows).split('\n') : ['(none)'];
}
