/**
 * The typed CoreMachine client.
 *
 * @example
 *   import { createClient } from '@coremachine/client';
 *   const cm = createClient({ url: 'http://127.0.0.1:3000' });
 *   const { jobId } = await cm.jobs.submit.mutate({ type: 'hello_world', params: { n: 10 } });
 *   const job = await cm.jobs.get.query({ jobId });
 *   cm.jobs.watch.subscribe({ jobId }, { onData: (j) => console.log(j.status) });
 */
import type { AppRouter } from '@coremachine/server';
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import { EventSource } from 'eventsource';

export type { AppRouter, SubmitInput } from '@coremachine/server';
export type { JobView, TaskView, StageView, JobEvent, SubmitResult, Page } from '@coremachine/core-machine';
export { TRPCClientError };

export interface ClientOptions {
  /** Base URL of a CoreMachine API, e.g. http://127.0.0.1:3000 (the /trpc path is added). */
  url: string;
  headers?: Record<string, string>;
}

export function createClient(options: ClientOptions) {
  const url = options.url.replace(/\/+$/, '') + '/trpc';
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url, EventSource: EventSource as never }),
        false: httpBatchLink({ url, headers: () => options.headers ?? {} }),
      }),
    ],
  });
}

export type CoreMachineClient = ReturnType<typeof createClient>;

/** The field-level issues of a BAD_REQUEST from the API (`[{ path: 'params.n', message }]`). */
export function errorIssues(err: unknown): Array<{ path: string; message: string }> {
  if (err instanceof TRPCClientError)
    return (err.data as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues ?? [];
  return [];
}
