import { z } from 'zod';
import { DEFAULT_STORAGE_BUDGET, storageBudgetSchema, type StorageBudget } from './budget.ts';
import { StorageError } from './errors.ts';

/** Azurite's well-known development account (public, documented by Azurite). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const AZURITE_DEFAULT_ENDPOINT = `http://127.0.0.1:10000/${AZURITE_ACCOUNT}`;

/** Time budgets of storage calls (see budget.ts); defaults when omitted. */
const budget = { budget: storageBudgetSchema.optional() };

const azuriteConfig = z.object({
  ...budget,
  kind: z.literal('azurite'),
  /** Blob endpoint including the account, e.g. http://127.0.0.1:10000/devstoreaccount1. */
  endpoint: z.url().default(AZURITE_DEFAULT_ENDPOINT),
});

const connectionStringConfig = z.object({
  ...budget,
  kind: z.literal('connection_string'),
  connectionString: z.string().min(1, 'connection string is empty'),
});

const accountUrlConfig = z.object({
  ...budget,
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

/** A configuration's time budgets, defaults filled in. */
export function budgetOf(config: StorageConfig): StorageBudget {
  return config.budget ?? DEFAULT_STORAGE_BUDGET;
}

const BUDGET_ENV = {
  requestTimeoutMs: 'CM_STORAGE_REQUEST_TIMEOUT_MS',
  totalTimeoutMs: 'CM_STORAGE_TOTAL_TIMEOUT_MS',
  maxAttempts: 'CM_STORAGE_MAX_ATTEMPTS',
  retryBaseDelayMs: 'CM_STORAGE_RETRY_BASE_DELAY_MS',
  retryMaxDelayMs: 'CM_STORAGE_RETRY_MAX_DELAY_MS',
} as const satisfies Record<keyof StorageBudget, string>;

function budgetFromEnv(env: Record<string, string | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, name] of Object.entries(BUDGET_ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (!Number.isInteger(n)) {
      throw new StorageError('STORAGE_CONFIG_INVALID', `Invalid storage configuration: ${name} is not an integer`);
    }
    out[key] = n;
  }
  return out;
}

/**
 * Reads the storage configuration from the environment:
 * - `AZURE_STORAGE_CONNECTION_STRING` -> connection string (account key or SAS);
 * - `AZURE_STORAGE_ACCOUNT_URL` (+ optional `AZURE_CLIENT_ID`) -> DefaultAzureCredential;
 * - otherwise Azurite at `CM_AZURITE_ENDPOINT` or http://127.0.0.1:10000/devstoreaccount1.
 *
 * Time budgets (milliseconds unless said): `CM_STORAGE_REQUEST_TIMEOUT_MS` (one request without
 * an answer or progress, default 30000), `CM_STORAGE_TOTAL_TIMEOUT_MS` (a call with all its
 * retries, default 120000), `CM_STORAGE_MAX_ATTEMPTS` (default 5), `CM_STORAGE_RETRY_BASE_DELAY_MS`
 * (default 500) and `CM_STORAGE_RETRY_MAX_DELAY_MS` (default 10000). GDAL's /vsiaz/ reads get the
 * same budget through `gdalConfigFor`.
 */
export function storageConfigFromEnv(env: Record<string, string | undefined> = process.env): StorageConfig {
  const budget = budgetFromEnv(env);
  if (env.AZURE_STORAGE_CONNECTION_STRING) {
    return parseStorageConfig({
      kind: 'connection_string',
      connectionString: env.AZURE_STORAGE_CONNECTION_STRING,
      budget,
    });
  }
  if (env.AZURE_STORAGE_ACCOUNT_URL) {
    return parseStorageConfig({
      kind: 'account_url',
      accountUrl: env.AZURE_STORAGE_ACCOUNT_URL,
      managedIdentityClientId: env.AZURE_CLIENT_ID || undefined,
      budget,
    });
  }
  return parseStorageConfig({ kind: 'azurite', endpoint: env.CM_AZURITE_ENDPOINT || undefined, budget });
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
