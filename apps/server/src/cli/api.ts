import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import type { AppRouter } from '../router.ts';

/** The CLI's API client (the same links as @coremachine/client, which depends on this app). */
export function apiClient(baseUrl: string) {
  const url = baseUrl.replace(/\/+$/, '') + '/trpc';
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url, EventSource: EventSource as never }),
        false: httpBatchLink({ url }),
      }),
    ],
  });
}

export type Api = ReturnType<typeof apiClient>;
