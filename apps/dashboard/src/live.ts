/** Subscriptions (SSE) as React state. */
import { useEffect, useState } from 'react';
import { toShownError, type ShownError } from './api.ts';

interface Unsubscribable {
  unsubscribe(): void;
}

/**
 * Keeps the latest value a subscription sent. `key` identifies the subscription: a new key
 * closes the old stream and opens a new one.
 */
export function useLive<T>(
  key: string,
  open: (handlers: { onData: (value: T) => void; onError: (err: unknown) => void }) => Unsubscribable,
): { data: T | undefined; error: ShownError | null } {
  const [state, setState] = useState<{ key: string; data: T | undefined; error: ShownError | null }>({
    key,
    data: undefined,
    error: null,
  });
  useEffect(() => {
    const sub = open({
      onData: (data) => setState({ key, data, error: null }),
      onError: (err) => setState((s) => ({ key, data: s.key === key ? s.data : undefined, error: toShownError(err) })),
    });
    return () => sub.unsubscribe();
    // `key` captures the inputs of `open`: a new key means a new stream.
  }, [key]);
  return state.key === key ? { data: state.data, error: state.error } : { data: undefined, error: null };
}
