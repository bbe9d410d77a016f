import { describe, expect, it } from 'vitest';
import { DEFAULT_STORAGE_BUDGET } from './budget.ts';
import { AZURITE_DEFAULT_ENDPOINT, budgetOf, parseStorageConfig, storageConfigFromEnv } from './config.ts';

describe('storageConfigFromEnv', () => {
  it('defaults to Azurite', () => {
    expect(storageConfigFromEnv({})).toEqual({
      kind: 'azurite',
      endpoint: AZURITE_DEFAULT_ENDPOINT,
      budget: DEFAULT_STORAGE_BUDGET,
    });
    expect(storageConfigFromEnv({ CM_AZURITE_ENDPOINT: 'http://127.0.0.1:10005/devstoreaccount1' })).toMatchObject({
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
    ).toMatchObject({
      kind: 'account_url',
      accountUrl: 'https://a.blob.core.windows.net',
      managedIdentityClientId: 'id1',
    });
  });
  it('rejects a bad account URL naming the field', () => {
    expect(() => parseStorageConfig({ kind: 'account_url', accountUrl: 'ftp://x' })).toThrow(/accountUrl/);
    expect(() => storageConfigFromEnv({ AZURE_STORAGE_ACCOUNT_URL: 'not a url' })).toThrow(
      expect.objectContaining({ code: 'STORAGE_CONFIG_INVALID' }),
    );
  });
  it('reads the time budgets, defaults for the rest', () => {
    const c = storageConfigFromEnv({ CM_STORAGE_REQUEST_TIMEOUT_MS: '2000', CM_STORAGE_MAX_ATTEMPTS: '3' });
    expect(budgetOf(c)).toEqual({ ...DEFAULT_STORAGE_BUDGET, requestTimeoutMs: 2000, maxAttempts: 3 });
    expect(budgetOf(parseStorageConfig({ kind: 'azurite' }))).toEqual(DEFAULT_STORAGE_BUDGET);
    expect(() => storageConfigFromEnv({ CM_STORAGE_TOTAL_TIMEOUT_MS: 'soon' })).toThrow(/CM_STORAGE_TOTAL_TIMEOUT_MS/);
    expect(() => storageConfigFromEnv({ CM_STORAGE_MAX_ATTEMPTS: '0' })).toThrow(/budget\.maxAttempts/);
  });
});
