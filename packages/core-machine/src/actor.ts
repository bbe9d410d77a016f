/**
 * Who did what: a request's actor (the API token's name and role) is carried through the engine
 * call in an AsyncLocalStorage, and the ledger writes an `actor` event right after the engine's
 * own event of that action (job_submitted, job_cancelled, job_retried, job_rerun), in the same
 * transaction: both commit or neither. Work that runs outside the request (workers, sweeps) has
 * no actor and writes none.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Queryable } from './db.ts';
import { metrics } from './metrics.ts';

export interface Actor {
  /** The token's name (`bootstrap` for CM_API_TOKEN). */
  token: string;
  role: string;
  /** The procedure called, e.g. `jobs.cancel`. */
  procedure: string;
}

const store = new AsyncLocalStorage<Actor>();

/** The engine event each action writes, by the procedure's last segment. */
const EVENT_OF: Record<string, string> = {
  submit: 'job_submitted',
  cancel: 'job_cancelled',
  retry: 'job_retried',
  rerun: 'job_rerun',
};

/** Runs `fn` (an engine call) on behalf of `actor`. */
export function withActor<T>(actor: Actor, fn: () => T): T {
  return store.run(actor, fn);
}

/** After the engine's event `kind` of job `jobId`: the actor event, when this is the actor's action. */
export async function writeActorEvent(db: Queryable, events: string, jobId: string, kind: string): Promise<void> {
  const actor = store.getStore();
  if (!actor) return;
  const action = actor.procedure.split('.').pop()!;
  if (EVENT_OF[action] !== kind) return;
  await db.query(`INSERT INTO ${events} (job_id, kind, message, data) VALUES ($1, 'actor', $2, $3)`, [
    jobId,
    `${action} by token "${actor.token}" (${actor.role})`,
    JSON.stringify({ action, procedure: actor.procedure, token: actor.token, role: actor.role }),
  ]);
  metrics.event('actor');
}
