import { describe, expectTypeOf, it } from 'vitest';
import { createClient, type SubmitInput } from './index.ts';

describe('typed client', () => {
  const cm = createClient({ url: 'http://127.0.0.1:1' });

  it('accepts valid hello_world parameters', () => {
    expectTypeOf<{ type: 'hello_world'; params: { n: 5; message: 'hi' } }>().toExtend<SubmitInput>();
    expectTypeOf(cm.jobs.submit.mutate).toBeCallableWith({
      type: 'hello_world',
      params: { n: 5, message: 'hi', failure_rate: 0.1 },
    });
  });

  it('rejects wrong parameters at compile time', () => {
    // @ts-expect-error n must be a number (or numeric string coerced at runtime, typed as unknown input)
    void (() => cm.jobs.submit.mutate({ type: 'hello_world', params: { message: 42 } }));
    // @ts-expect-error unknown job type
    void (() => cm.jobs.submit.mutate({ type: 'no_such_job', params: {} }));
    // @ts-expect-error failure_rate must be a number
    void (() => cm.jobs.submit.mutate({ type: 'hello_world', params: { failure_rate: 'high' } }));
  });

  it('types results', () => {
    expectTypeOf(cm.jobs.get.query).returns.resolves.toHaveProperty('status');
    expectTypeOf(cm.jobs.submit.mutate).returns.resolves.toHaveProperty('idempotent').toEqualTypeOf<boolean>();
  });
});
