import { describe, expect, it } from 'vitest';
import {
  abortReason,
  classifyError,
  codedError,
  CoreMachineError,
  ERROR_CODES,
  httpStatusForCode,
  isAbortReason,
  isCoreMachineError,
  permanentError,
  registerErrorCodes,
  scrubMessage,
  TaskError,
  toStoredError,
} from './errors.ts';

/** Shaped like @coremachine/storage's StorageError, which does not depend on the core. */
class StorageLikeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

describe('the error model', () => {
  it('every code in the table has a meaning, a permanence and an HTTP status', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(entry.meaning.length, code).toBeGreaterThan(5);
      expect(typeof entry.permanent, code).toBe('boolean');
      expect(entry.httpStatus, code).toBeGreaterThanOrEqual(400);
    }
    expect(ERROR_CODES.TASK_TIMEOUT.permanent).toBe(false);
    expect(httpStatusForCode('CM_ERR_JOB_NOT_FOUND')).toBe(404);
    expect(httpStatusForCode('NO_SUCH_CODE')).toBe(500);
  });

  it('recognises errors by brand or shape, not instanceof', () => {
    // A branded error from another copy of this module: a plain object with the shared symbol.
    const foreign = Object.assign(new Error('from another copy'), {
      [Symbol.for('coremachine.error')]: true,
      code: 'CRS_MISSING',
    });
    expect(isCoreMachineError(foreign)).toBe(true);
    expect(classifyError(foreign)).toEqual({ code: 'CRS_MISSING', permanent: true });
    expect(isCoreMachineError({ code: 'X', permanent: false, message: 'duck' })).toBe(true);
    expect(isCoreMachineError(new Error('plain'))).toBe(false);
    expect(isCoreMachineError(new CoreMachineError('CM_ERR_INVALID_STATE', 'x'))).toBe(true);
  });

  it('storage errors keep their own codes and the permanence of the table', () => {
    const stored = toStoredError(new StorageLikeError('BLOB_NOT_FOUND', 'bronze/a.tif does not exist'));
    expect(stored).toEqual({ code: 'BLOB_NOT_FOUND', message: 'bronze/a.tif does not exist', permanent: true });
    expect(toStoredError(new StorageLikeError('STORAGE_TIMEOUT', 'took too long')).permanent).toBe(false);
    // A driver or system error code nobody registered stays unclassified.
    const sys = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(toStoredError(sys)).toEqual({
      code: 'TASK_ERROR',
      message: 'connect ECONNREFUSED 127.0.0.1:5432',
      permanent: false,
    });
  });

  it('an own permanent flag wins over the table; unknown codes are transient', () => {
    expect(toStoredError(new TaskError('BLOB_NOT_FOUND', 'x', { permanent: false })).permanent).toBe(false);
    expect(codedError('BLOB_NOT_FOUND', 'x').permanent).toBe(true);
    expect(codedError('MY_OWN_CODE', 'x').permanent).toBe(false);
    registerErrorCodes({ MY_REGISTERED: { meaning: 'registered here', permanent: true, httpStatus: 422 } });
    expect(codedError('MY_REGISTERED', 'x').permanent).toBe(true);
    expect(permanentError('ANY', 'x').permanent).toBe(true);
  });

  it('never stores a stack or a server path', () => {
    const err = new Error("ENOENT: no such file or directory, open '/tmp/cm-cog-abc/run/input.tif'");
    const stored = toStoredError(err);
    expect(stored.code).toBe('TASK_ERROR');
    expect(stored.permanent).toBe(false);
    expect(stored.detail).toBeUndefined();
    expect(stored.message).toBe("ENOENT: no such file or directory, open '…/input.tif'");
    expect(JSON.stringify(stored)).not.toContain('/tmp');
    const withDetail = toStoredError(
      permanentError('FILE_UNREADABLE', 'bronze/x.tif is not a GeoTIFF', {
        path: '/srv/app/data/x.tif',
        stack: 'Error\n    at foo (/srv/app/a.ts:1:1)',
      }),
    );
    expect(withDetail.detail).toEqual({ path: '…/x.tif' });
    // GDAL virtual paths and blob paths are kept.
    expect(scrubMessage('cannot open /vsiaz/bronze/a.tif or bronze/b/c.tif')).toBe(
      'cannot open /vsiaz/bronze/a.tif or bronze/b/c.tif',
    );
    expect(scrubMessage('https://h/c/b?sv=1&sig=SECRET')).toBe('https://h/c/b?sv=1&sig=***');
  });

  it('abort reasons are typed and classified', () => {
    const timeout = abortReason('timeout');
    expect(isAbortReason(timeout, 'timeout')).toBe(true);
    expect(isAbortReason(timeout, 'cancelled')).toBe(false);
    expect(toStoredError(timeout)).toMatchObject({ code: 'TASK_TIMEOUT', permanent: false });
    expect(toStoredError(abortReason('cancelled'))).toMatchObject({ code: 'TASK_CANCELLED', permanent: true });
    expect(isAbortReason(new Error('x'))).toBe(false);
  });
});
