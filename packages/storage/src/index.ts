import './services.ts';

export { createStorage, blobUrlFrom, type BlobStorage } from './blob-storage.ts';
export type { BlobInfo, BlobStat, HierarchyPage, ListOptions, UploadOptions } from './blob-info.ts';
export {
  storageConfigSchema,
  storageConfigFromEnv,
  parseStorageConfig,
  azuriteConnectionString,
  parseConnectionString,
  AZURITE_ACCOUNT,
  AZURITE_DEFAULT_ENDPOINT,
  budgetOf,
  type StorageConfig,
  type StorageConfigInput,
} from './config.ts';
export {
  StorageError,
  isStorageError,
  httpStatusOf,
  isTransientStorageError,
  redactSecrets,
  redactError,
  type StorageErrorCode,
} from './errors.ts';
export {
  containerNameProblem,
  blobPathProblem,
  assertContainerName,
  assertBlobPath,
  containerNameSchema,
  blobPathSchema,
  blobPrefixSchema,
} from './names.ts';
export { gdalConfigFor, gdalBudgetFor, vsiazPath } from './gdal.ts';
export {
  storageBudgetSchema,
  DEFAULT_STORAGE_BUDGET,
  withBudget,
  isRetryableFailure,
  retryDelayMs,
  type StorageBudget,
  type StorageBudgetInput,
  type Attempt,
} from './budget.ts';
export {
  ensureAzurite,
  ensureContainers,
  probePort,
  repoRoot,
  stopPid,
  type AzuriteHandle,
  type EnsureAzuriteOptions,
} from './azurite.ts';
export { blobExtension, guessContentType } from './content-type.ts';
export {
  blobFilterSchema,
  compileBlobFilter,
  NO_EXTENSION,
  type BlobFilter,
  type BlobFilterInput,
  type FilterableEntry,
} from './filter.ts';
export { parseIsoInstant, isoInstantSchema } from './iso-instant.ts';
