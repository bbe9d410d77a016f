/**
 * The conformance suite every job package runs: one call in one test file checks that a job type
 * behaves as CoreMachine promises its users, whatever the job does.
 *
 * - compliance passes (core's `checkCompliance`, the check the server runs at load);
 * - a sample submit completes and its stored result matches the plugin's result schema;
 * - the same submit again returns the same job id with `idempotent: true`;
 * - wrong parameters are refused with `CM_ERR_INVALID_PARAMETERS` naming the field, and nothing
 *   is written (no job row, no task, no queue message, no blob, no table);
 * - each missing-input case the package declares fails at attempt 1 with its documented code;
 * - no user-visible error (job error, task errors) carries a stack trace or a server path.
 *
 * Every check is also a plain function returning a list of problems (empty when it passes), so a
 * test can prove that the suite catches a broken job.
 *
 * @example
 *   // packages/job-foo/test/conformance.integration.test.ts
 *   describeJobPlugin(foo, {
 *     sample: { params: { blob_name: 'x.tif' } },
 *     invalid: [{ params: { blob_name: 42 }, field: 'params.blob_name' }],
 *     missingInputs: [{ name: 'missing blob', params: { blob_name: 'gone.tif' }, code: 'BLOB_NOT_FOUND' }],
 *   });
 */
import os from 'node:os';
import path from 'node:path';
import { checkCompliance, type AnyJobDefinition, type JobView, type TaskView } from '@coremachine/core-machine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createTestMachine, type TestMachine, type TestMachineOptions } from './index.ts';

/** Parameters the job's schema must refuse, and the field the refusal must name. */
export interface InvalidParamsCase {
  /** Shown in the test name; defaults to the field. */
  name?: string;
  params: unknown;
  /** The issue path that must be reported, e.g. `params.n` (a nested field: `params.filter.prefix`). */
  field: string;
}

/** A missing or unreadable input the package documents, with the code it fails with. */
export interface MissingInputCase {
  /** e.g. `missing container`, `missing blob`, `unreadable file`. */
  name: string;
  params: unknown;
  /** The documented error code of the job and of the failing task. */
  code: string;
  /** The stage whose task fails (checked against the job error when given). */
  stage?: string;
  /**
   * How the job ends: `failed` (default; the job error carries the code) or, for a stage that
   * goes on past a failed task (`onTaskFailure: 'continue'`), `completed_with_errors`.
   */
  jobStatus?: 'failed' | 'completed_with_errors';
  /** Text the failing task's error message must contain, e.g. the blob path it could not read. */
  messageIncludes?: string;
}

/** What "nothing written" inspects beyond the ledger and the queue. */
export interface WatchedOutputs {
  /**
   * Containers whose blobs are counted (and whose existence is noted) before and after; `name/prefix`
   * counts only the blobs under that prefix (a shared container such as `silver`).
   */
  containers?: string[];
  /** Database schemas whose tables are listed before and after (e.g. `geo`). */
  schemas?: string[];
  /** Tables (`schema.table`) whose rows are counted before and after (e.g. a STAC items table). */
  tables?: string[];
}

export interface JobFixtures {
  /** A submit that must complete. */
  sample: {
    params: unknown;
    /** Extra assertions on the completed job (returns problems, or throws). */
    check?: (job: JobView, tm: TestMachine) => string[] | void | Promise<string[] | void>;
  };
  /** At least one: each must be refused at submit. */
  invalid: InvalidParamsCase[];
  /** The missing-input cases the package declares (README errors). */
  missingInputs?: MissingInputCase[];
  /** Where the job writes, for the "nothing written" check. */
  watch?: WatchedOutputs;
  /** Runs before the machine starts (create containers, upload data). */
  setup?: () => Promise<void>;
  /** Runs after the checks, before the machine closes (delete blobs, tables, rows of `jobIds`). */
  teardown?: (ctx: { tm: TestMachine | undefined; jobIds: string[] }) => Promise<void>;
  /** Options for the test machine (services, config, other plugins the job needs). */
  machine?: Omit<TestMachineOptions, 'plugins'> & { plugins?: TestMachineOptions['plugins'] };
  /** Per job wait (default 60 s). */
  timeoutMs?: number;
  /** The package name shown in compliance problems (default `<type>`). */
  packageName?: string;
}

// ---- leaks ----------------------------------------------------------------------------------

const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Absolute paths of this server that must never reach a user: the repository, the working and
 * temporary directories, the home directory and the usual system roots. Each matches only as a
 * path of its own (not inside a relative blob path such as `data/var/x.tif`).
 */
function serverPathPatterns(): Array<{ label: string; re: RegExp }> {
  const roots = [REPO_ROOT, process.cwd(), os.tmpdir(), os.homedir()].filter((p) => p.length > 1);
  const generic = ['/tmp', '/usr', '/home', '/root', '/var', '/opt', '/private', '/etc'];
  return [...new Set([...roots, ...generic])].map((root) => ({
    label: root,
    re: new RegExp(`(?:^|[^\\w./~-])${escapeRe(root.replace(/\/+$/, ''))}(?=/)`),
  }));
}

const STACK_FRAME = /(?:^|\n)[ \t]+at\s/;
const SOURCE_POSITION = /\.(?:ts|js|mjs|cjs|mts|cts):\d+/;

/**
 * Problems with a value a user will see (a job or task error): a stack trace (`    at `, a
 * `file.ts:NN` position) or an absolute server path, anywhere in it (message, detail, nested).
 */
export function leakProblems(where: string, value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  // JSON escapes newlines: look at the decoded strings as well.
  const strings: string[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        strings.push(k);
        collect(x);
      }
    }
  };
  collect(value);
  const problems: string[] = [];
  const all = [...strings, text];
  const excerpt = (s: string, at: number) => JSON.stringify(s.slice(Math.max(0, at - 30), at + 50));
  const frame = all.find((s) => STACK_FRAME.test(s));
  if (frame !== undefined)
    problems.push(`${where} carries a stack trace: ${excerpt(frame, frame.search(STACK_FRAME))}`);
  const pos = all.find((s) => SOURCE_POSITION.test(s));
  if (pos !== undefined)
    problems.push(`${where} carries a source position: ${excerpt(pos, pos.search(SOURCE_POSITION))}`);
  for (const { label, re } of serverPathPatterns()) {
    const hit = all.find((s) => re.test(s));
    if (hit !== undefined) {
      problems.push(`${where} carries a server path (${label}): ${excerpt(hit, hit.search(re))}`);
      break;
    }
  }
  return problems;
}

/** Leaks in a job's error and its tasks' errors. */
export function jobLeakProblems(job: JobView, tasks: TaskView[]): string[] {
  return [
    ...leakProblems(`job ${job.id} error`, job.error),
    ...tasks.flatMap((t) => leakProblems(`task ${t.stageName}/${t.key} error`, t.error)),
  ];
}

// ---- snapshot of what a submit could write --------------------------------------------------

export interface WriteSnapshot {
  rows: Record<string, number>;
  tables: string[];
  blobs: Record<string, number | null>;
}

/** Row counts of the ledger and queue tables, tables of the watched schemas, blobs of the watched containers. */
export async function snapshotWrites(tm: TestMachine, watch: WatchedOutputs = {}): Promise<WriteSnapshot> {
  const schemas = [tm.schema, `${tm.schema}_queue`];
  const { rows: ledgerTables } = await tm.pool.query<{ s: string; t: string }>(
    `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
     WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE' ORDER BY 1, 2`,
    [schemas],
  );
  const rows: Record<string, number> = {};
  for (const { s, t } of ledgerTables.filter((x) => countsAsWrite(x.s === tm.schema ? 'ledger' : 'queue', x.t))) {
    const q = `SELECT count(*)::int AS n FROM "${s.replaceAll('"', '""')}"."${t.replaceAll('"', '""')}"`;
    rows[`${s}.${t}`] = (await tm.pool.query<{ n: number }>(q)).rows[0]!.n;
  }
  const { rows: watched } = await tm.pool.query<{ name: string }>(
    `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
     WHERE table_schema = ANY($1) ORDER BY 1`,
    [watch.schemas ?? []],
  );
  for (const t of watch.tables ?? []) {
    const [s, name] = t.includes('.') ? [t.slice(0, t.indexOf('.')), t.slice(t.indexOf('.') + 1)] : ['public', t];
    const exists = await tm.pool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [
      `"${s.replaceAll('"', '""')}"."${name.replaceAll('"', '""')}"`,
    ]);
    if (!exists.rows[0]?.e) continue;
    const q = `SELECT count(*)::int AS n FROM "${s.replaceAll('"', '""')}"."${name.replaceAll('"', '""')}"`;
    rows[t] = (await tm.pool.query<{ n: number }>(q)).rows[0]!.n;
  }
  const blobs: Record<string, number | null> = {};
  const storage = (tm.machine.services as { storage?: StorageLike }).storage;
  for (const c of watch.containers ?? []) {
    if (!storage) throw new Error(`watch.containers given (${c}) but the machine has no storage service`);
    const slash = c.indexOf('/');
    const [container, prefix] = slash < 0 ? [c, undefined] : [c.slice(0, slash), c.slice(slash + 1)];
    if (!(await storage.containerExists(container))) {
      blobs[c] = null;
      continue;
    }
    let n = 0;
    for await (const _ of storage.list(container, prefix ? { prefix } : {})) n += 1;
    blobs[c] = n;
  }
  return { rows, tables: watched.map((r) => r.name), blobs };
}

/**
 * Which ledger and queue tables a submit writes to: every ledger table but the workers' registry
 * (heartbeats) and the migrations record; in the queue schema, the messages (`job`), not pg-boss's
 * own bookkeeping (statistics, warnings, its instance row), which changes on its own schedule.
 */
function countsAsWrite(kind: 'ledger' | 'queue', table: string): boolean {
  if (kind === 'ledger') return table !== 'workers' && table !== 'schema_migrations';
  return table === 'job';
}

interface StorageLike {
  containerExists(container: string): Promise<boolean>;
  list(container: string, options?: { prefix?: string }): AsyncIterable<unknown>;
}

/** What changed between two snapshots, as problems. */
export function writeProblems(before: WriteSnapshot, after: WriteSnapshot): string[] {
  const problems: string[] = [];
  for (const [t, n] of Object.entries(after.rows)) {
    const was = before.rows[t] ?? 0;
    if (n !== was) problems.push(`${t}: ${n - was} row(s) written`);
  }
  for (const t of after.tables) if (!before.tables.includes(t)) problems.push(`table ${t} created`);
  for (const [c, n] of Object.entries(after.blobs)) {
    const was = before.blobs[c];
    if (was === null && n !== null) problems.push(`container ${c} created`);
    else if (n !== was) problems.push(`container ${c}: ${(n ?? 0) - (was ?? 0)} blob(s) written`);
  }
  return problems;
}

// ---- the checks -----------------------------------------------------------------------------

/** Compliance as the server checks it at load, one problem per row of core's report. */
export function checkPluginCompliance(plugin: unknown, packageName?: string): string[] {
  const type = (plugin as { type?: unknown } | null)?.type;
  const report = checkCompliance(packageName ?? `<${typeof type === 'string' ? type : 'unnamed'}>`, plugin);
  return report.problems.map((p) => `${report.packageName}: ${p.element}: ${p.message}`);
}

const describeError = (job: JobView) =>
  job.error ? `${job.error.code}: ${job.error.message}${job.error.stage ? ` (stage ${job.error.stage})` : ''}` : 'none';

/** Submits the sample, waits, and checks it completed with a result that parses with `plugin.result`. */
export async function checkSample(
  tm: TestMachine,
  plugin: AnyJobDefinition,
  sample: JobFixtures['sample'],
  options: { timeoutMs?: number } = {},
): Promise<{ problems: string[]; job: JobView | null }> {
  const submitted = await submitOrProblem(tm, plugin.type, sample.params);
  if ('problem' in submitted) return { problems: [`sample submit was refused: ${submitted.problem}`], job: null };
  const problems: string[] = [];
  if (submitted.idempotent) problems.push(`sample submit returned idempotent: true on a fresh ledger`);
  const job = await tm.waitFor(submitted.jobId, { timeoutMs: options.timeoutMs ?? 60_000 });
  if (job.status !== 'completed') {
    problems.push(`sample job ended ${job.status}, not completed; error: ${describeError(job)}`);
    return { problems, job };
  }
  const parsed = (plugin.result as z.ZodType).safeParse(job.result);
  if (!parsed.success)
    problems.push(
      ...parsed.error.issues.map(
        (i) => `stored result does not match the result schema at result.${i.path.map(String).join('.')}: ${i.message}`,
      ),
    );
  if (sample.check) {
    try {
      problems.push(...((await sample.check(job, tm)) ?? []));
    } catch (err) {
      problems.push(`sample check failed: ${(err as Error).message}`);
    }
  }
  return { problems, job };
}

/** The same parameters again: same job id, `idempotent: true`, no new job row. */
export async function checkIdempotentResubmit(
  tm: TestMachine,
  plugin: AnyJobDefinition,
  params: unknown,
  firstJobId: string,
): Promise<string[]> {
  const before = await snapshotWrites(tm);
  const again = await submitOrProblem(tm, plugin.type, params);
  if ('problem' in again) return [`second submit was refused: ${again.problem}`];
  const problems: string[] = [];
  if (again.jobId !== firstJobId) {
    problems.push(`second submit returned job ${again.jobId}, not ${firstJobId}`);
    // A second job was created: let it settle so it does not write during the next checks.
    await tm.waitFor(again.jobId, { timeoutMs: 30_000 }).catch(() => {});
  }
  if (again.idempotent !== true) problems.push(`second submit returned idempotent: ${String(again.idempotent)}`);
  const jobsTable = `${tm.schema}.jobs`;
  const after = await snapshotWrites(tm);
  const added = (after.rows[jobsTable] ?? 0) - (before.rows[jobsTable] ?? 0);
  if (added !== 0) problems.push(`second submit wrote ${added} job row(s)`);
  return problems;
}

/** Refused with CM_ERR_INVALID_PARAMETERS, an issue naming the field, and nothing written. */
export async function checkInvalidParameters(
  tm: TestMachine,
  plugin: AnyJobDefinition,
  c: InvalidParamsCase,
  watch: WatchedOutputs = {},
): Promise<string[]> {
  const before = await snapshotWrites(tm, watch);
  const problems: string[] = [];
  try {
    const res = await tm.submit(plugin.type, c.params);
    problems.push(`accepted ${JSON.stringify(c.params)} (job ${res.jobId}) instead of refusing it`);
    // Let a wrongly accepted job settle so its writes are seen (and it does not outlive the test).
    await tm.waitFor(res.jobId, { timeoutMs: 30_000 }).catch(() => {});
  } catch (err) {
    const e = err as { code?: unknown; issues?: unknown; message?: unknown };
    if (e.code !== 'CM_ERR_INVALID_PARAMETERS')
      problems.push(`refused with ${String(e.code)} (${String(e.message)}), not CM_ERR_INVALID_PARAMETERS`);
    const issues = Array.isArray(e.issues) ? (e.issues as Array<{ path?: unknown; message?: unknown }>) : [];
    const names = issues.flatMap((i) => (typeof i.path === 'string' ? i.path.split(', ') : []));
    if (!names.some((n) => n === c.field || n.startsWith(`${c.field}.`)))
      problems.push(`no issue names ${c.field}; issues: ${JSON.stringify(issues)}`);
    problems.push(...leakProblems('the refusal', { message: e.message, issues }));
  }
  problems.push(...writeProblems(before, await snapshotWrites(tm, watch)));
  return problems;
}

/** The job fails, a task of it fails at attempt 1 with the code, and no error leaks. */
export async function checkMissingInput(
  tm: TestMachine,
  plugin: AnyJobDefinition,
  c: MissingInputCase,
  options: { timeoutMs?: number } = {},
): Promise<{ problems: string[]; job: JobView | null }> {
  const submitted = await submitOrProblem(tm, plugin.type, c.params);
  if ('problem' in submitted) return { problems: [`submit was refused: ${submitted.problem}`], job: null };
  const job = await tm.waitFor(submitted.jobId, { timeoutMs: options.timeoutMs ?? 60_000 });
  const tasks = await tm.tasks(job.id);
  const problems: string[] = [];
  const status = c.jobStatus ?? 'failed';
  if (job.status !== status) problems.push(`job ended ${job.status}, not ${status}; error: ${describeError(job)}`);
  if (status === 'failed') {
    if (job.error?.code !== c.code) problems.push(`job error code is ${String(job.error?.code)}, not ${c.code}`);
    if (c.stage && job.error?.stage !== c.stage)
      problems.push(`job error names stage ${String(job.error?.stage)}, not ${c.stage}`);
  }
  const failed = tasks.filter(
    (t) => t.status === 'failed' && t.error?.code === c.code && (!c.stage || t.stageName === c.stage),
  );
  if (!failed.length)
    problems.push(
      `no task failed with ${c.code}; tasks: ${JSON.stringify(tasks.map((t) => [t.stageName, t.key, t.status, t.error?.code ?? null]))}`,
    );
  for (const t of failed) {
    if (t.attempts !== 1) problems.push(`task ${t.stageName}/${t.key} failed after ${t.attempts} attempts, not 1`);
    if (c.messageIncludes !== undefined && !t.error?.message.includes(c.messageIncludes))
      problems.push(
        `task ${t.stageName}/${t.key} error does not name ${JSON.stringify(c.messageIncludes)}: ${JSON.stringify(t.error?.message)}`,
      );
  }
  problems.push(...jobLeakProblems(job, tasks));
  return { problems, job };
}

/** Every job of the machine's ledger: no error carries a stack trace or a server path. */
export async function checkNoLeaks(tm: TestMachine): Promise<string[]> {
  const problems: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await tm.machine.listJobs({ cursor, limit: 200 });
    for (const job of page.items) problems.push(...jobLeakProblems(job, await tm.tasks(job.id)));
    cursor = page.nextCursor;
  } while (cursor);
  return problems;
}

async function submitOrProblem(
  tm: TestMachine,
  type: string,
  params: unknown,
): Promise<{ jobId: string; idempotent: boolean } | { problem: string }> {
  try {
    return await tm.submit(type, params);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown; issues?: unknown };
    return { problem: `${String(e.code)}: ${String(e.message)}` };
  }
}

// ---- the suite ------------------------------------------------------------------------------

/**
 * Registers the conformance suite of one job type as vitest tests (one `describe`, a test per
 * check and per declared case). Call it at the top level of a test file.
 */
export function describeJobPlugin(plugin: AnyJobDefinition, fixtures: JobFixtures): void {
  const type = (plugin as { type?: unknown }).type;
  describe(`${typeof type === 'string' ? type : 'job'}: conformance`, () => {
    let tm: TestMachine | undefined;
    const jobIds: string[] = [];
    let sample: Promise<Awaited<ReturnType<typeof checkSample>>> | undefined;
    const timeoutMs = fixtures.timeoutMs;
    const machine = () => {
      if (!tm) throw new Error('the test machine did not start (see the beforeAll error)');
      return tm;
    };
    const runSample = () =>
      (sample ??= checkSample(machine(), plugin, fixtures.sample, { timeoutMs }).then((r) => {
        if (r.job) jobIds.push(r.job.id);
        return r;
      }));

    beforeAll(async () => {
      await fixtures.setup?.();
      const { plugins: extra = [], ...options } = fixtures.machine ?? {};
      tm = await createTestMachine({ ...options, plugins: [plugin, ...extra] });
    });
    afterAll(async () => {
      try {
        await fixtures.teardown?.({ tm, jobIds });
      } finally {
        await tm?.close();
      }
    });

    it('is compliant (the check the server runs at load)', () => {
      expect(checkPluginCompliance(plugin, fixtures.packageName)).toEqual([]);
    });

    it('a sample submit completes and its stored result matches the result schema', async () => {
      expect((await runSample()).problems).toEqual([]);
    });

    it('the same submit again returns the same job id with idempotent: true', async () => {
      const { job } = await runSample();
      expect(job, 'the sample submit was refused').not.toBeNull();
      expect(await checkIdempotentResubmit(machine(), plugin, fixtures.sample.params, job!.id)).toEqual([]);
    });

    it('declares at least one invalid-parameters case', () => {
      expect(fixtures.invalid.length).toBeGreaterThan(0);
    });
    for (const c of fixtures.invalid) {
      it(`refuses ${c.name ?? c.field} with CM_ERR_INVALID_PARAMETERS naming ${c.field}, writing nothing`, async () => {
        expect(await checkInvalidParameters(machine(), plugin, c, fixtures.watch)).toEqual([]);
      });
    }

    for (const c of fixtures.missingInputs ?? []) {
      it(`${c.name}: fails at attempt 1 with ${c.code}`, async () => {
        const { problems, job } = await checkMissingInput(machine(), plugin, c, { timeoutMs });
        if (job) jobIds.push(job.id);
        expect(problems).toEqual([]);
      });
    }

    it('no user-visible error carries a stack trace or a server path', async () => {
      expect(await checkNoLeaks(machine())).toEqual([]);
    });
  });
}
