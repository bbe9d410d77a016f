import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import type { AppRouter } from '../router.ts';

/**
 * The CLI's API client (the same links as @coremachine/client, which depends on this app); with
 * a token (CM_TOKEN), every call and subscription sends `Authorization: Bearer <token>`.
 */
export function apiClient(baseUrl: string, token?: string) {
  const url = baseUrl.replace(/\/+$/, '') + '/trpc';
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url,
          EventSource: EventSource as never,
          eventSourceOptions: {
            fetch: (input: string | URL, init?: RequestInit) =>
              fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
          } as never,
        }),
        false: httpBatchLink({ url, headers }),
      }),
    ],
  });
}

export type Api = ReturnType<typeof apiClient>;
