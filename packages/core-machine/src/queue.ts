/**
 * The queue: pg-boss in its own schema (`<schema>_queue`), the control queue and one task queue
 * per job type. Queue creation is idempotent and races safely, so every process creates them.
 */
import { PgBoss, type ConstructorOptions } from 'pg-boss';
import type { MachineConfig } from './config.ts';
import { listenOnConnect } from './db.ts';
import type { AnyJobDefinition, Logger } from './define-job.ts';
import { CONTROL_QUEUE, taskQueue } from './ledger.ts';

/** Starts pg-boss on `connectionString` and creates the control queue and the plugins' task queues. */
export async function startQueue(
  connectionString: string,
  config: MachineConfig,
  log: Logger,
  plugins: AnyJobDefinition[],
): Promise<PgBoss> {
  // pg-boss hands its options to its pg.Pool: the same guard as ours (see listenOnConnect).
  const options: ConstructorOptions & typeof listenOnConnect = {
    connectionString,
    schema: `${config.schema}_queue`,
    max: Math.max(4, Math.ceil(config.poolMax / 2)),
    useListenNotify: true,
    supervise: true,
    superviseIntervalSeconds: config.queueSuperviseSeconds,
    monitorIntervalSeconds: config.queueSuperviseSeconds,
    schedule: false,
    monitorVacuum: false,
    application_name: 'coremachine-queue',
    ...listenOnConnect,
  };
  const boss = new PgBoss(options);
  boss.on('error', (err) => log.error('queue error', { error: (err as Error).message }));
  await boss.start();
  // Control messages retry on transient errors (a crashed planner is re-run after its heartbeat
  // lapses). Task messages never retry inside pg-boss: the ledger decides retries, so a message
  // is only a wake-up call carrying an id.
  await boss.createQueue(CONTROL_QUEUE, {
    retryLimit: 10,
    retryDelay: 1,
    retryBackoff: true,
    retryDelayMax: 60,
    heartbeatSeconds: 10,
    expireInSeconds: 3600,
    notify: true,
  });
  for (const p of plugins) {
    // A message whose handler failed before claiming (a lost connection), or whose worker died
    // holding it (no pg-boss heartbeat for 10 s), is delivered again; that is harmless, since a
    // claim only takes a queued task. Long handlers keep their message alive by heartbeat.
    await boss.createQueue(taskQueue(p.type), {
      retryLimit: 5,
      retryDelay: 1,
      expireInSeconds: 86_400,
      heartbeatSeconds: 10,
      notify: true,
    });
  }
  return boss;
}
