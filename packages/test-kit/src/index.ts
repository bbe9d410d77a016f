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
import { randomBytes } from 'node:crypto';
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
    connectionString: DATABASE_URL,
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
      if (!keepSchema && !options.schema) await dropSchemas(schema);
    },
  };
}

export async function dropSchemas(schema: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
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
export * from './conformance.ts';
