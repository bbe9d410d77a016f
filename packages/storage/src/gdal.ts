import { azuriteConnectionString, budgetOf, parseConnectionString, type StorageConfig } from './config.ts';
import { assertBlobPath, assertContainerName } from './names.ts';

/**
 * GDAL configuration options that let `/vsiaz/` read the same storage as `createStorage(config)`.
 * Set them per process (`gdal.config.set`) or per dataset open; never persist them: for key
 * auth they carry the account key.
 *
 * - Azurite and connection strings: `AZURE_STORAGE_CONNECTION_STRING` (GDAL honours its
 *   `BlobEndpoint`, which is how Azurite's http endpoint is reached).
 * - Account URL + identity: `AZURE_STORAGE_ACCOUNT` with signed requests
 *   (`AZURE_NO_SIGN_REQUEST=NO`); GDAL then fetches a token from the managed-identity endpoint,
 *   for a user-assigned identity the one named by `AZURE_IMDS_CLIENT_ID`. A non-default host
 *   (sovereign clouds, private endpoints) goes in `CPL_AZURE_ENDPOINT`.
 *
 * Time budgets, from the same configuration as the SDK calls (`budget`): `GDAL_HTTP_TIMEOUT` and
 * `GDAL_HTTP_CONNECTTIMEOUT` (whole seconds, at least 1) from `requestTimeoutMs`,
 * `GDAL_HTTP_MAX_RETRY` (`maxAttempts - 1`) and `GDAL_HTTP_RETRY_DELAY` (seconds; GDAL doubles it
 * per retry) from `retryBaseDelayMs`. GDAL retries throttling and server errors (429, 500, 502, 503, 504). Other
 * GDAL options (caches, block sizes) are the geo package's.
 *
 * @example
 *   for (const [k, v] of Object.entries(gdalConfigFor(storage.config))) gdal.config.set(k, v);
 *   await gdal.openAsync(vsiazPath('bronze', 'dem/elev.tif'));
 */
export function gdalConfigFor(config: StorageConfig): Record<string, string> {
  return { ...gdalAuthFor(config), ...gdalBudgetFor(config) };
}

/** The storage-owned GDAL HTTP time budget options (see {@link gdalConfigFor}). */
export function gdalBudgetFor(config: StorageConfig): Record<string, string> {
  const b = budgetOf(config);
  const timeout = String(Math.max(1, Math.ceil(b.requestTimeoutMs / 1000)));
  return {
    GDAL_HTTP_TIMEOUT: timeout,
    GDAL_HTTP_CONNECTTIMEOUT: timeout,
    GDAL_HTTP_MAX_RETRY: String(b.maxAttempts - 1),
    GDAL_HTTP_RETRY_DELAY: String(Math.max(0.1, b.retryBaseDelayMs / 1000)),
  };
}

function gdalAuthFor(config: StorageConfig): Record<string, string> {
  switch (config.kind) {
    case 'azurite':
      return { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(config.endpoint) };
    case 'connection_string': {
      // GDAL does not read SAS-only connection strings: pass the token separately.
      const parts = parseConnectionString(config.connectionString);
      if (!parts.AccountKey && parts.SharedAccessSignature && parts.BlobEndpoint) {
        const endpoint = new URL(parts.BlobEndpoint);
        const account = endpoint.hostname.split('.')[0] ?? '';
        return {
          AZURE_STORAGE_ACCOUNT: account,
          AZURE_STORAGE_SAS_TOKEN: parts.SharedAccessSignature,
          ...(endpoint.hostname.endsWith('.blob.core.windows.net')
            ? {}
            : { CPL_AZURE_ENDPOINT: endpoint.origin + endpoint.pathname.replace(/\/$/, '') }),
        };
      }
      return { AZURE_STORAGE_CONNECTION_STRING: config.connectionString };
    }
    case 'account_url': {
      const url = new URL(config.accountUrl);
      const account = url.hostname.split('.')[0] ?? '';
      return {
        AZURE_STORAGE_ACCOUNT: account,
        AZURE_NO_SIGN_REQUEST: 'NO',
        ...(config.managedIdentityClientId ? { AZURE_IMDS_CLIENT_ID: config.managedIdentityClientId } : {}),
        ...(url.hostname.endsWith('.blob.core.windows.net')
          ? {}
          : { CPL_AZURE_ENDPOINT: url.origin + url.pathname.replace(/\/$/, '') }),
      };
    }
  }
}

/** `/vsiaz/<container>/<blob>`, after validating both names. */
export function vsiazPath(container: string, blob: string): string {
  return `/vsiaz/${assertContainerName(container)}/${assertBlobPath(blob)}`;
}
