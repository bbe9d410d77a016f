/**
 * The periodic purge of a worker process (role worker or all): every CM_PURGE_INTERVAL_MINUTES,
 * settled jobs older than CM_RETENTION_DAYS go with everything of theirs. Many workers may run
 * it; the purge lock lets one of them work at a time and the others skip that round.
 */
import { purgeJobs, type CoreMachine } from '@coremachine/core-machine';
import type { Env } from './env.ts';
import { PURGE_HOOKS } from './purge-hooks.ts';

/** A minute after start, then every interval (nothing when retention is off: 0 days). */
export function startRetention(
  machine: CoreMachine,
  env: Pick<Env, 'CM_RETENTION_DAYS' | 'CM_PURGE_INTERVAL_MINUTES'>,
  firstDelayMs = 60_000,
): { stop(): Promise<void> } | null {
  if (!env.CM_RETENTION_DAYS) return null;
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const round = () => {
    if (running || stopped) return;
    running = purgeJobs(machine, { olderThanSeconds: env.CM_RETENTION_DAYS * 86_400, hooks: PURGE_HOOKS })
      .catch((err: Error) => machine.log.warn('retention purge failed; next round later', { error: err.message }))
      .finally(() => (running = null));
  };
  const first = setTimeout(round, firstDelayMs);
  const every = setInterval(round, env.CM_PURGE_INTERVAL_MINUTES * 60_000);
  first.unref();
  every.unref();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(first);
      clearInterval(every);
      await running;
    },
  };
}
