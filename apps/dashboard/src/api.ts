/**
 * The dashboard's tRPC client: queries and mutations over HTTP (batched), subscriptions over
 * SSE (`jobs.watch`, `jobs.watchList`). Same origin as the page: the server serves both.
 */
import type { AppRouter } from '@coremachine/server';
import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
  type inferRouterClient,
} from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';

const url = '/trpc';

export const api: inferRouterClient<AppRouter> = createTRPCClient<AppRouter>({
  links: [
    splitLink({
      condition: (op) => op.type === 'subscription',
      true: httpSubscriptionLink({ url }),
      false: httpBatchLink({ url }),
    }),
  ],
});

export type Outputs = inferRouterOutputs<AppRouter>;
export type Inputs = inferRouterInputs<AppRouter>;
export type Job = Outputs['jobs']['get'];
export type Task = Outputs['jobs']['tasks']['items'][number];
export type JobEvent = Outputs['jobs']['events'][number];
export type JobType = Outputs['jobs']['types'][number];
export type JobStatus = Job['status'];
export type TaskStatus = Task['status'];

export const JOB_STATUSES: JobStatus[] = [
  'queued',
  'processing',
  'completed',
  'completed_with_errors',
  'failed',
  'cancelled',
];
export const TASK_STATUSES: TaskStatus[] = ['queued', 'processing', 'completed', 'failed', 'cancelled'];
export const TERMINAL: JobStatus[] = ['completed', 'completed_with_errors', 'failed', 'cancelled'];

export interface Issue {
  path: string;
  message: string;
}

/** What the user sees of an error: a code and a sentence, never a stack. */
export interface ShownError {
  code: string;
  message: string;
  issues: Issue[];
}

export function toShownError(err: unknown): ShownError {
  if (err instanceof TRPCClientError) {
    const data = err.data as { cmCode?: string | null; code?: string; issues?: Issue[] } | undefined;
    if (!data) return { code: 'UNREACHABLE', message: `Cannot reach the CoreMachine API: ${err.message}`, issues: [] };
    return { code: data.cmCode ?? data.code ?? 'ERROR', message: err.message, issues: data.issues ?? [] };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'ERROR', message, issues: [] };
}
