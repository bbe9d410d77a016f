import { describe, expect, it } from 'vitest';
import { parseStorageConfig } from './config.ts';
import { gdalConfigFor as gdalOptions, vsiazPath } from './gdal.ts';
import type { StorageConfig } from './config.ts';

// The authentication part (the time budget options are tested on their own below).
const gdalConfigFor = (c: StorageConfig) =>
  Object.fromEntries(Object.entries(gdalOptions(c)).filter(([k]) => !k.startsWith('GDAL_HTTP_')));

describe('gdalConfigFor', () => {
  it('gives Azurite a connection string with its endpoint', () => {
    const c = gdalConfigFor(
      parseStorageConfig({ kind: 'azurite', endpoint: 'http://127.0.0.1:10001/devstoreaccount1' }),
    );
    expect(Object.keys(c)).toEqual(['AZURE_STORAGE_CONNECTION_STRING']);
    expect(c.AZURE_STORAGE_CONNECTION_STRING).toContain('BlobEndpoint=http://127.0.0.1:10001/devstoreaccount1;');
    expect(c.AZURE_STORAGE_CONNECTION_STRING).toContain('AccountName=devstoreaccount1;');
  });
  it('passes a key connection string through', () => {
    const cs = 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net';
    expect(gdalConfigFor(parseStorageConfig({ kind: 'connection_string', connectionString: cs }))).toEqual({
      AZURE_STORAGE_CONNECTION_STRING: cs,
    });
  });
  it('splits a SAS connection string into account + token', () => {
    const cs = 'BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2024&sig=abc%3D';
    expect(gdalConfigFor(parseStorageConfig({ kind: 'connection_string', connectionString: cs }))).toEqual({
      AZURE_STORAGE_ACCOUNT: 'acct',
      AZURE_STORAGE_SAS_TOKEN: 'sv=2024&sig=abc%3D',
    });
  });
  it('uses managed identity for an account URL', () => {
    expect(
      gdalConfigFor(parseStorageConfig({ kind: 'account_url', accountUrl: 'https://geodata.blob.core.windows.net' })),
    ).toEqual({ AZURE_STORAGE_ACCOUNT: 'geodata', AZURE_NO_SIGN_REQUEST: 'NO' });
    expect(
      gdalConfigFor(
        parseStorageConfig({
          kind: 'account_url',
          accountUrl: 'https://geodata.blob.core.usgovcloudapi.net',
          managedIdentityClientId: 'cid',
        }),
      ),
    ).toEqual({
      AZURE_STORAGE_ACCOUNT: 'geodata',
      AZURE_NO_SIGN_REQUEST: 'NO',
      AZURE_IMDS_CLIENT_ID: 'cid',
      CPL_AZURE_ENDPOINT: 'https://geodata.blob.core.usgovcloudapi.net',
    });
  });
  it('gives /vsiaz/ reads the configured time budget', () => {
    const defaults = gdalOptions(parseStorageConfig({ kind: 'azurite' }));
    expect(defaults).toMatchObject({
      GDAL_HTTP_TIMEOUT: '30',
      GDAL_HTTP_CONNECTTIMEOUT: '30',
      GDAL_HTTP_MAX_RETRY: '4',
      GDAL_HTTP_RETRY_DELAY: '0.5',
    });
    const tight = gdalOptions(
      parseStorageConfig({
        kind: 'azurite',
        budget: { requestTimeoutMs: 1_500, maxAttempts: 3, retryBaseDelayMs: 2_000 },
      }),
    );
    expect(tight).toMatchObject({ GDAL_HTTP_TIMEOUT: '2', GDAL_HTTP_MAX_RETRY: '2', GDAL_HTTP_RETRY_DELAY: '2' });
  });
  it('builds /vsiaz/ paths from validated names', () => {
    expect(vsiazPath('bronze', 'dem/elev.tif')).toBe('/vsiaz/bronze/dem/elev.tif');
    expect(() => vsiazPath('bronze', '../x.tif')).toThrow(/"\.\." segment/);
    expect(() => vsiazPath('Bronze', 'x.tif')).toThrow(/lower-case/);
  });
});
