/**
 * Control steps run at most once at a time per (job, step). The same control message can arrive
 * twice (a copy sent by the stall sweep while a long plan still runs, a redelivery, a client's
 * retry): the ledger's compare-and-set already keeps the stage planned and the job completed
 * once, but without this the plugin's `plan` or `aggregate` — which may write outside the ledger
 * — would run again, concurrently, in another worker or another batch.
 *
 * Across processes: a session advisory lock on one dedicated connection per worker, taken with
 * `pg_try_advisory_lock`, so a copy that finds the step running is dropped rather than waiting
 * (no connection is held waiting). The holder's own message stands for the step: if its process
 * dies, PostgreSQL releases the lock with the connection and pg-boss delivers that message again.
 * Within a process (session locks are re-entrant): a set of the steps in flight.
 */
import pg from 'pg';
import type { ControlMessage } from './ledger.ts';

/** The lock of one control step: job, action and (for a plan) stage. */
const lockKey = (msg: ControlMessage) => `${msg.jobId}:${msg.action}:${msg.action === 'plan' ? (msg.stage ?? 1) : ''}`;

export class ControlLocks {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly inFlight = new Set<string>();

  private readonly connectionString: string;
  private readonly schema: string;

  constructor(connectionString: string, schema: string) {
    this.connectionString = connectionString;
    this.schema = schema;
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.connectionString, application_name: 'coremachine-locks' });
      // A lost connection loses its locks with it: forget it, the next step connects again.
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      try {
        await client.connect();
      } catch (err) {
        this.drop(client);
        throw err;
      }
      this.client = client;
      return client;
    })().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client === client) this.client = null;
    client.end().catch(() => {});
  }

  /**
   * Runs `step` unless the same control step of the same job is running here or in another
   * process; returns whether it ran. Errors of `step` (and of the lock connection) propagate.
   */
  async exclusive(msg: ControlMessage, step: () => Promise<void>): Promise<boolean> {
    const key = lockKey(msg);
    if (this.inFlight.has(key)) return false;
    this.inFlight.add(key);
    try {
      const client = await this.connection();
      const args = [this.schema, key];
      const {
        rows: [row],
      } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', args);
      if (!row?.ok) return false;
      try {
        await step();
      } finally {
        // Should the unlock fail, the connection goes (and the lock with it).
        await client
          .query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', args)
          .catch(() => this.drop(client));
      }
      return true;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /**
   * `exclusive` for a batch: takes the locks of every step in one statement, runs `steps` with
   * those it got (a step running elsewhere, or twice in the batch, is dropped) and releases them
   * in one statement. Errors of `steps` (and of the lock connection) propagate.
   */
  async exclusiveMany<M extends ControlMessage>(msgs: M[], steps: (acquired: M[]) => Promise<void>): Promise<void> {
    const mine = new Map<string, M>();
    for (const msg of msgs) {
      const key = lockKey(msg);
      if (!this.inFlight.has(key) && !mine.has(key)) mine.set(key, msg);
    }
    if (!mine.size) return;
    for (const key of mine.keys()) this.inFlight.add(key);
    try {
      const client = await this.connection();
      const { rows } = await client.query<{ k: string; ok: boolean }>(
        'SELECT k, pg_try_advisory_lock(hashtext($1), hashtext(k)) AS ok FROM unnest($2::text[]) AS k',
        [this.schema, [...mine.keys()]],
      );
      const held = rows.filter((r) => r.ok).map((r) => r.k);
      if (!held.length) return;
      try {
        await steps(held.map((k) => mine.get(k)!));
      } finally {
        await client
          .query('SELECT pg_advisory_unlock(hashtext($1), hashtext(k)) FROM unnest($2::text[]) AS k', [
            this.schema,
            held,
          ])
          .catch(() => this.drop(client));
      }
    } finally {
      for (const key of mine.keys()) this.inFlight.delete(key);
    }
  }

  async close(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => null)) ?? null;
    if (client) this.drop(client);
  }
}
