import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as errors from './errors.ts';
import { codedError, CoreMachineError, errorCodeInfo, httpStatusForCode, TaskError, toStoredError } from './errors.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A second copy of the error module (it imports nothing), as a package with its own copy of the core loads it. */
async function secondCopy(): Promise<typeof errors> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-errors-copy-'));
  dirs.push(dir);
  await copyFile(fileURLToPath(new URL('./errors.ts', import.meta.url)), join(dir, 'errors.ts'));
  const copy = (await import(/* @vite-ignore */ pathToFileURL(join(dir, 'errors.ts')).href)) as typeof errors;
  expect(copy.CoreMachineError).not.toBe(CoreMachineError);
  return copy;
}

describe('the error model across copies of the module', () => {
  it('a code registered through one copy is in the table of every copy', async () => {
    const copy = await secondCopy();
    copy.registerErrorCodes({
      COPY_REGISTERED: { meaning: 'registered by another copy', permanent: true, httpStatus: 422 },
    });
    expect(errorCodeInfo('COPY_REGISTERED')).toEqual({
      meaning: 'registered by another copy',
      permanent: true,
      httpStatus: 422,
    });
    expect(httpStatusForCode('COPY_REGISTERED')).toBe(422);
    expect(codedError('COPY_REGISTERED', 'x').permanent).toBe(true);
    // And the other way round.
    errors.registerErrorCodes({ HERE_REGISTERED: { meaning: 'registered here', permanent: false, httpStatus: 503 } });
    expect(copy.httpStatusForCode('HERE_REGISTERED')).toBe(503);
  });

  it("an engine error from another copy is recognised by its brand (instanceof can't)", async () => {
    const copy = await secondCopy();
    const foreign = new copy.CoreMachineError('CM_ERR_JOB_NOT_FOUND', 'No job with id x');
    expect(foreign instanceof CoreMachineError).toBe(false);
    expect(errors.isEngineError(foreign)).toBe(true);
    expect(errors.isEngineError(new CoreMachineError('CM_ERR_INVALID_STATE', 'x'))).toBe(true);
    // A handler's coded error, a shaped one without the brand, a plain error: not engine errors.
    expect(errors.isEngineError(new TaskError('BLOB_NOT_FOUND', 'x'))).toBe(false);
    expect(errors.isEngineError({ code: 'CM_ERR_JOB_NOT_FOUND', permanent: true, message: 'x' })).toBe(false);
    expect(errors.isEngineError(Object.assign(new TaskError('CM_ERR_MADE_UP', 'x')))).toBe(false);
    expect(errors.isEngineError(new Error('x'))).toBe(false);
  });

  it('every storage code is in the table, AZURITE_START_FAILED included', () => {
    expect(errorCodeInfo('AZURITE_START_FAILED')).toMatchObject({ permanent: false, httpStatus: 503 });
    // Shaped like @coremachine/storage's StorageError (which carries no brand and no permanence of its own here).
    const err = Object.assign(new Error('Azurite did not start on port 10000'), { code: 'AZURITE_START_FAILED' });
    expect(toStoredError(err)).toMatchObject({ code: 'AZURITE_START_FAILED', permanent: false });
  });
});
