import { CoreMachineError } from '@coremachine/core-machine';
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { describe, expect, it } from 'vitest';
import { errorDetails, publicProcedure, router, type Context } from './trpc.ts';

/** A procedure failing the way pg fails while PostgreSQL restarts (code and message as pg gives them). */
function failing(err: unknown) {
  const app = router({
    boom: publicProcedure.query(() => {
      throw err;
    }),
  });
  return app.createCaller({} as Context).boom();
}

async function caught(p: Promise<unknown>): Promise<TRPCError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TRPCError);
  return err as TRPCError;
}

describe('errors at the edge', () => {
  it.each([
    [
      'server shutting down (57P01)',
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    ],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['starting up (57P03)', Object.assign(new Error('the database system is starting up'), { code: '57P03' })],
    ['connection terminated', new Error('Connection terminated unexpectedly')],
  ])('a lost database connection (%s) is a 503 with CM_ERR_DATABASE_UNREACHABLE, not a 500', async (_label, err) => {
    const e = await caught(failing(err));
    expect(e.code).toBe('SERVICE_UNAVAILABLE');
    expect(getHTTPStatusCodeFromError(e)).toBe(503);
    expect(errorDetails(e).cmCode).toBe('CM_ERR_DATABASE_UNREACHABLE');
    expect(e.message).toBe('PostgreSQL is unavailable; try again shortly');
    expect(e.message).not.toMatch(/127\.0\.0\.1|5432/);
  });

  it('an engine error keeps its mapping; an unknown error stays a 500', async () => {
    const notFound = await caught(failing(new CoreMachineError('CM_ERR_JOB_NOT_FOUND', 'job abc not found')));
    expect(getHTTPStatusCodeFromError(notFound)).toBe(404);
    const other = await caught(failing(Object.assign(new Error('duplicate key'), { code: '23505' })));
    expect(getHTTPStatusCodeFromError(other)).toBe(500);
    expect(errorDetails(other).cmCode).toBeNull();
  });

  it('an engine error from another copy of the core (no instanceof) keeps its mapping and issues', async () => {
    // What a CoreMachineError of a second copy of @coremachine/core-machine looks like here: its brand, not our class.
    const foreign = Object.assign(new Error('No job with id abc'), {
      [Symbol.for('coremachine.error')]: true,
      name: 'CoreMachineError',
      code: 'CM_ERR_JOB_NOT_FOUND',
      permanent: true,
      issues: [{ path: 'jobId', message: 'no such job' }],
    });
    expect(foreign).not.toBeInstanceOf(CoreMachineError);
    const e = await caught(failing(foreign));
    expect(e.code).toBe('NOT_FOUND');
    expect(getHTTPStatusCodeFromError(e)).toBe(404);
    expect(errorDetails(e)).toEqual({
      cmCode: 'CM_ERR_JOB_NOT_FOUND',
      issues: [{ path: 'jobId', message: 'no such job' }],
    });
  });
});
