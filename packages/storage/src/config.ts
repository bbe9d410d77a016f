import { z } from 'zod';
import { StorageError } from './errors.ts';

/** Azurite's well-known development account (public, documented by Azurite). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const AZURITE_DEFAULT_ENDPOINT = `http://127.0.0.1:10000/${AZURITE_ACCOUNT}`;

const azuriteConfig = z.object({
  kind: z.literal('azurite'),
  /** Blob endpoint including the account, e.g. http://127.0.0.1:10000/devstoreaccount1. */
  endpoint: z.url().default(AZURITE_DEFAULT_ENDPOINT),
});

const connectionStringConfig = z.object({
  kind: z.literal('connection_string'),
  connectionString: z.string().min(1, 'connection string is empty'),
});

const accountUrlConfig = z.object({
  kind: z.literal('account_url'),
  /** e.g. https://myaccount.blob.core.windows.net */
  accountUrl: z.url({ protocol: /^https?$/ }),
  /** Client id of a user-assigned managed identity; omit for system-assigned / developer login. */
  managedIdentityClientId: z.string().min(1).optional(),
});

/** Where blobs live and how to authenticate. Parsed once at the edge (`storageConfigFromEnv`). */
export const storageConfigSchema = z.discriminatedUnion('kind', [
  azuriteConfig,
  connectionStringConfig,
  accountUrlConfig,
]);
export type StorageConfig = z.output<typeof storageConfigSchema>;
export type StorageConfigInput = z.input<typeof storageConfigSchema>;

export function parseStorageConfig(input: StorageConfigInput): StorageConfig {
  const r = storageConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ');
    throw new StorageError('STORAGE_CONFIG_INVALID', `Invalid storage configuration: ${issues}`, { cause: r.error });
  }
  return r.data;
}

/**
 * Reads the storage configuration from the environment:
 * - `AZURE_STORAGE_CONNECTION_STRING` -> connection string (account key or SAS);
 * - `AZURE_STORAGE_ACCOUNT_URL` (+ optional `AZURE_CLIENT_ID`) -> DefaultAzureCredential;
 * - otherwise Azurite at `CM_AZURITE_ENDPOINT` or http://127.0.0.1:10000/devstoreaccount1.
 */
export function storageConfigFromEnv(env: Record<string, string | undefined> = process.env): StorageConfig {
  if (env.AZURE_STORAGE_CONNECTION_STRING) {
    return parseStorageConfig({ kind: 'connection_string', connectionString: env.AZURE_STORAGE_CONNECTION_STRING });
  }
  if (env.AZURE_STORAGE_ACCOUNT_URL) {
    return parseStorageConfig({
      kind: 'account_url',
      accountUrl: env.AZURE_STORAGE_ACCOUNT_URL,
      managedIdentityClientId: env.AZURE_CLIENT_ID || undefined,
    });
  }
  return parseStorageConfig({ kind: 'azurite', endpoint: env.CM_AZURITE_ENDPOINT || undefined });
}

/** The Azurite connection string for an endpoint (well-known key; not a secret). */
export function azuriteConnectionString(endpoint: string = AZURITE_DEFAULT_ENDPOINT): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint.replace(/\/$/, '')};`;
}

/** Parses `Key=Value;...` connection strings (values may contain '='). */
export function parseConnectionString(cs: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}
