import { describe, expect, it } from 'vitest';
import { AZURITE_DEFAULT_ENDPOINT, parseStorageConfig, storageConfigFromEnv } from './config.ts';

describe('storageConfigFromEnv', () => {
  it('defaults to Azurite', () => {
    expect(storageConfigFromEnv({})).toEqual({ kind: 'azurite', endpoint: AZURITE_DEFAULT_ENDPOINT });
    expect(storageConfigFromEnv({ CM_AZURITE_ENDPOINT: 'http://127.0.0.1:10005/devstoreaccount1' })).toEqual({
      kind: 'azurite',
      endpoint: 'http://127.0.0.1:10005/devstoreaccount1',
    });
  });
  it('prefers a connection string, then an account URL', () => {
    expect(
      storageConfigFromEnv({
        AZURE_STORAGE_CONNECTION_STRING: 'AccountName=a;AccountKey=b',
        AZURE_STORAGE_ACCOUNT_URL: 'https://a.blob.core.windows.net',
      }).kind,
    ).toBe('connection_string');
    expect(
      storageConfigFromEnv({ AZURE_STORAGE_ACCOUNT_URL: 'https://a.blob.core.windows.net', AZURE_CLIENT_ID: 'id1' }),
    ).toEqual({ kind: 'account_url', accountUrl: 'https://a.blob.core.windows.net', managedIdentityClientId: 'id1' });
  });
  it('rejects a bad account URL naming the field', () => {
    expect(() => parseStorageConfig({ kind: 'account_url', accountUrl: 'ftp://x' })).toThrow(/accountUrl/);
    expect(() => storageConfigFromEnv({ AZURE_STORAGE_ACCOUNT_URL: 'not a url' })).toThrow(
      expect.objectContaining({ code: 'STORAGE_CONFIG_INVALID' }),
    );
  });
});
