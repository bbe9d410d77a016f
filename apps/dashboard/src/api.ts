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
const TOKEN_KEY = 'coremachine.token';

/** The API token this browser signs in with (kept in localStorage), or null when anonymous. */
export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}
export const authHeaders = (): Record<string, string> => {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
};

/** EventSource cannot send headers: the token goes as RFC 6750's `access_token` query parameter. */
class TokenEventSource extends EventSource {
  constructor(href: string | URL, init?: EventSourceInit) {
    const token = getToken();
    const u = new URL(href, location.href);
    if (token) u.searchParams.set('access_token', token);
    super(u, init);
  }
}

export const api: inferRouterClient<AppRouter> = createTRPCClient<AppRouter>({
  links: [
    splitLink({
      condition: (op) => op.type === 'subscription',
      true: httpSubscriptionLink({ url, EventSource: TokenEventSource }),
      false: httpBatchLink({ url, headers: authHeaders }),
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
    if (!data) {
      // The edge refuses before tRPC (no token, wrong token, too small a role): a plain HTTP status.
      const status = (err.meta as { response?: { status?: number } } | undefined)?.response?.status;
      if (status === 401)
        return {
          code: 'UNAUTHORIZED',
          message: 'this server needs an API token — sign in with an API token (top right).',
          issues: [],
        };
      if (status === 403)
        return { code: 'FORBIDDEN', message: 'the API token in use has too small a role for this.', issues: [] };
      return { code: 'UNREACHABLE', message: `Cannot reach the CoreMachine API: ${err.message}`, issues: [] };
    }
    const code = data.cmCode ?? data.code ?? 'ERROR';
    const hint = code === 'UNAUTHORIZED' ? ' — sign in with an API token (top right).' : '';
    return { code, message: err.message + hint, issues: data.issues ?? [] };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'ERROR', message, issues: [] };
}
