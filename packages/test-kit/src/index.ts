/**
 * Test harness over real PostgreSQL (and Azurite when @coremachine/storage is available): each
 * machine gets its own ledger schema (and queue schema), dropped again on close.
 *
 * @example
 *   const tm = await createTestMachine({ plugins: [helloWorld] });
 *   const job = await tm.submitAndWait('hello_world', { n: 5 });
 *   expect(job.status).toBe('completed');
 *   await tm.close();
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CoreMachine,
  TERMINAL_JOB_STATUSES,
  type AnyJobDefinition,
  type JobView,
  type MachineConfig,
  type Services,
  type TaskView,
  type Worker,
  type WorkerOptions,
} from '@coremachine/core-machine';
import pg from 'pg';

export const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';

/** Fast settings for tests: short leases, quick retries. */
export const TEST_CONFIG: Partial<MachineConfig> = {
  retryBaseDelayMs: 50,
  retryMaxDelayMs: 1_000,
  leaseSeconds: 5,
  sweepIntervalMs: 1_000,
  queueSuperviseSeconds: 2,
  pollingIntervalSeconds: 0.5,
  poolMax: 8,
};

export interface TestMachineOptions {
  plugins: AnyJobDefinition[];
  services?: Partial<Services>;
  config?: Partial<MachineConfig>;
  /** Start a worker in-process (default true). */
  worker?: boolean | WorkerOptions;
  /** Reuse an existing schema (e.g. a second process on the same ledger). */
  schema?: string;
  migrationDirs?: string[];
  /** Another PostgreSQL (e.g. one from `startPostgres`); default DATABASE_URL. */
  connectionString?: string;
}

export interface TestMachine {
  machine: CoreMachine;
  pool: pg.Pool;
  schema: string;
  worker: Worker | null;
  submit(type: string, params: unknown): Promise<{ jobId: string; idempotent: boolean }>;
  waitFor(jobId: string, options?: { timeoutMs?: number; until?: (job: JobView) => boolean }): Promise<JobView>;
  submitAndWait(type: string, params: unknown, options?: { timeoutMs?: number }): Promise<JobView>;
  tasks(jobId: string, options?: { stage?: number }): Promise<TaskView[]>;
  close(options?: { keepSchema?: boolean }): Promise<void>;
}

export function uniqueSchema(prefix = 'cmt'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** Services the storage package can supply, when it is present and exports its factory. */
async function defaultServices(): Promise<Partial<Services>> {
  try {
    const storage = (await import('@coremachine/storage' as string)) as Record<string, any>;
    if (typeof storage['createStorage'] === 'function' && typeof storage['storageConfigFromEnv'] === 'function') {
      return { storage: storage['createStorage'](storage['storageConfigFromEnv']()) } as Partial<Services>;
    }
  } catch {
    /* storage not built yet */
  }
  return {};
}

export async function createTestMachine(options: TestMachineOptions): Promise<TestMachine> {
  const schema = options.schema ?? uniqueSchema();
  const services = { ...(await defaultServices()), ...options.services } as Partial<Services>;
  const machine = await CoreMachine.start({
    connectionString: options.connectionString ?? DATABASE_URL,
    plugins: options.plugins,
    services,
    config: { ...TEST_CONFIG, ...options.config, schema },
    ...(options.migrationDirs ? { migrationDirs: options.migrationDirs } : {}),
    log: quietLogger(),
  });
  const worker =
    options.worker === false
      ? null
      : await machine.startWorker(typeof options.worker === 'object' ? options.worker : {});

  const waitFor: TestMachine['waitFor'] = async (jobId, { timeoutMs = 60_000, until } = {}) => {
    const deadline = Date.now() + timeoutMs;
    let job: JobView | null = null;
    while (Date.now() < deadline) {
      job = await machine.getJob(jobId);
      if (job && (until ? until(job) : TERMINAL_JOB_STATUSES.includes(job.status))) return job;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `job ${jobId} did not settle within ${timeoutMs} ms; last state: ${JSON.stringify(job && { status: job.status, stages: job.stages, error: job.error })}`,
    );
  };

  return {
    machine,
    pool: machine.pool,
    schema,
    worker,
    submit: (type, params) => machine.submit(type, params),
    waitFor,
    submitAndWait: async (type, params, opts) => waitFor((await machine.submit(type, params)).jobId, opts),
    tasks: async (jobId, { stage } = {}) => {
      const all: TaskView[] = [];
      let cursor: string | null = null;
      do {
        const page = await machine.listTasks(jobId, { ...(stage !== undefined ? { stage } : {}), cursor, limit: 1000 });
        all.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return all;
    },
    close: async ({ keepSchema = !!process.env['CM_KEEP_TEST_SCHEMAS'] } = {}) => {
      await machine.close();
      if (!keepSchema && !options.schema) await dropSchemas(schema, options.connectionString);
    },
  };
}

export async function dropSchemas(schema: string, connectionString = DATABASE_URL): Promise<void> {
  const pool = new pg.Pool({ connectionString, max: 1 });
  try {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${schema}_queue" CASCADE`);
  } finally {
    await pool.end();
  }
}

function quietLogger() {
  const level = process.env['CM_LOG_LEVEL'] ?? 'error';
  const emit = (lvl: string) => (msg: string, fields?: Record<string, unknown>) => {
    const order = ['info', 'warn', 'error'];
    if (order.indexOf(lvl) >= order.indexOf(level))
      process.stderr.write(JSON.stringify({ level: lvl, msg, ...fields }) + '\n');
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export { TERMINAL_JOB_STATUSES };

// ---- a PostgreSQL cluster of one's own, for fault tests ---------------------------------------

const PG_BIN = process.env['CM_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

/** A PostgreSQL cluster owned by one test: it may be stopped and restarted at will. */
export interface PgInstance {
  port: number;
  /** Connection string of its `postgres` database. */
  url: string;
  dataDir: string;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops (fast shutdown: every connection is terminated), waits `downMs`, starts again. */
  restart(options?: { downMs?: number; mode?: 'fast' | 'immediate' }): Promise<void>;
  /** Stops the cluster and removes its folder. */
  destroy(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `initdb` into a temporary folder (as the `postgres` user when running as root) and starts the
 * cluster on a free port, tuned for tests (no fsync). Nothing else uses it, so a test may restart
 * or stop it without disturbing any other test.
 *
 * @example
 *   const pg = await startPostgres();
 *   await pg.restart({ downMs: 1000 });
 *   await pg.destroy();
 */
export async function startPostgres(): Promise<PgInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-pg-'));
  const dataDir = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chmodSync(dir, 0o755);
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const pgRun = (bin: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args], { cwd: dir })
      : run(join(PG_BIN, bin), args, { cwd: dir });
  await pgRun('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
    '-c shared_buffers=32MB',
  ].join(' ');
  const start = async () => {
    await pgRun('pg_ctl', ['-D', dataDir, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '60', 'start']);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    await pgRun('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    start,
    stop,
    restart: async ({ downMs = 0, mode = 'fast' } = {}) => {
      await stop(mode);
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    destroy: async () => {
      await stop('immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
export * from './conformance.ts';
