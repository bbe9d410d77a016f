import { describe, expect, it } from 'vitest';
import { httpStatusOf, isTransientStorageError, redactSecrets, StorageError } from './errors.ts';

describe('redactSecrets', () => {
  it('hides SAS signatures and account keys', () => {
    expect(
      redactSecrets('GET https://a.blob.core.windows.net/c/x.tif?sv=2024-01-01&se=2030&sig=abc%2Bdef%3D&sp=r failed'),
    ).toBe('GET https://a.blob.core.windows.net/c/x.tif?sv=2024-01-01&se=2030&sig=***&sp=r failed');
    expect(
      redactSecrets(
        'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0==;EndpointSuffix=core.windows.net',
      ),
    ).toBe('DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;EndpointSuffix=core.windows.net');
    expect(
      redactSecrets('BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=zz'),
    ).not.toMatch(/sig=zz/);
  });
});

describe('transient errors', () => {
  it.each([
    [undefined, true],
    [408, true],
    [429, true],
    [500, true],
    [503, true],
    [403, false],
    [404, false],
    [409, false],
  ])('status %s -> %s', (status, transient) => {
    const err = Object.assign(new Error('x'), status === undefined ? {} : { statusCode: status });
    expect(isTransientStorageError(err)).toBe(transient);
    expect(httpStatusOf(err)).toBe(status);
  });
  it('never retries our own coded errors, except a spent time budget', () => {
    expect(isTransientStorageError(new StorageError('CONTAINER_NOT_FOUND', 'x'))).toBe(false);
    expect(new StorageError('BLOB_NOT_FOUND', 'x').permanent).toBe(true);
    for (const code of ['STORAGE_TIMEOUT', 'STORAGE_UNAVAILABLE'] as const) {
      const err = new StorageError(code, 'x', { statusCode: 503 });
      expect([isTransientStorageError(err), err.permanent, httpStatusOf(err)]).toEqual([true, false, 503]);
    }
  });
});
