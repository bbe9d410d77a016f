import { createReadStream, createWriteStream } from 'node:fs';
import { stat as fsStat } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BlobServiceClient,
  RestError,
  StorageSharedKeyCredential,
  type BlobItem,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import { withBudget, type StorageBudget } from './budget.ts';
import { AZURITE_ACCOUNT, AZURITE_KEY, budgetOf, type StorageConfig } from './config.ts';
import { redactError, StorageError } from './errors.ts';
import { assertBlobPath, assertContainerName } from './names.ts';
import { guessContentType } from './content-type.ts';
import type { BlobInfo, BlobStat, HierarchyPage, ListOptions, UploadOptions } from './blob-info.ts';
import { ListBlobsXmlParser, quoteEtag } from './list-xml.ts';

/**
 * Blob storage as the jobs see it. Every name is validated before any request is made.
 * Listing streams page by page: memory stays bounded by one page whatever the container size.
 * Every call runs under the configuration's time budget (`budget.ts`): a frozen or failing
 * endpoint makes it fail with STORAGE_TIMEOUT or STORAGE_UNAVAILABLE (transient) after its
 * retries, never hang.
 */
export interface BlobStorage {
  readonly config: StorageConfig;
  /** Blobs in `container` (optionally under a prefix), in lexicographic order, one at a time. */
  list(container: string, options?: ListOptions): AsyncIterable<BlobInfo>;
  /** The same listing, one service page at a time. */
  listPages(container: string, options?: ListOptions): AsyncIterable<BlobInfo[]>;
  /**
   * The same pages as `listPages`, field for field, each parsed as its response arrives (a
   * streaming XML parse of List Blobs, sent through the SDK's own pipeline and credential)
   * instead of the SDK's whole-document parse, whose per-page object graphs dominate the
   * memory of a long listing. Same time budget and retries, one page per budgeted call.
   */
  listPagesStreamed(container: string, options?: ListOptions): AsyncIterable<BlobInfo[]>;
  /**
   * One level of the listing split at `/` (under `prefix`): per page, the virtual directories
   * and the blobs directly at that level. Listing each directory in turn gives the flat listing.
   */
  listHierarchyPages(container: string, options?: ListOptions): AsyncIterable<HierarchyPage>;
  stat(container: string, blob: string, options?: { signal?: AbortSignal }): Promise<BlobStat>;
  /** A stream of the blob's bytes (optionally a range). */
  readStream(
    container: string,
    blob: string,
    options?: { offset?: number; count?: number; signal?: AbortSignal },
  ): Promise<Readable>;
  /**
   * Streams a blob to a file (one GET). With `etag`, only that version: a blob replaced since
   * fails with BLOB_CHANGED rather than give other bytes.
   */
  downloadToFile(
    container: string,
    blob: string,
    file: string,
    options?: { signal?: AbortSignal; etag?: string },
  ): Promise<number>;
  uploadStream(container: string, blob: string, stream: Readable, options?: UploadOptions): Promise<void>;
  uploadFile(container: string, blob: string, file: string, options?: UploadOptions): Promise<number>;
  uploadData(container: string, blob: string, data: Buffer | string, options?: UploadOptions): Promise<void>;
  /** Deletes a blob; false when it did not exist. */
  delete(container: string, blob: string, options?: { signal?: AbortSignal }): Promise<boolean>;
  containerExists(container: string): Promise<boolean>;
  /** Creates the container if needed; true when it was created. */
  ensureContainer(container: string): Promise<boolean>;
  /**
   * Lets anyone read the container's blobs over HTTP (blob-level public access), so clients
   * such as GDAL's /vsicurl/, STACIT or a browser can read COG hrefs without credentials.
   * `false` makes it private again. The account must allow public access.
   */
  setPublicRead(container: string, publicRead: boolean): Promise<void>;
  deleteContainer(container: string): Promise<boolean>;
  /** Stable URL of a blob, never with a SAS token: safe to store in results and STAC hrefs. */
  blobUrl(container: string, blob: string): string;
}

/** Creates a `BlobStorage` for a parsed configuration (`storageConfigFromEnv()`, `parseStorageConfig`). */
export function createStorage(config: StorageConfig): BlobStorage {
  return new AzureBlobStorage(config, serviceClientFor(config));
}

// Retries are ours (withBudget): the SDK's policy neither times requests out client-side nor
// retries throttling, so it makes one try per attempt.
const SDK_OPTIONS: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };

function serviceClientFor(config: StorageConfig): BlobServiceClient {
  switch (config.kind) {
    case 'azurite':
      return new BlobServiceClient(
        config.endpoint,
        new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
        SDK_OPTIONS,
      );
    case 'connection_string':
      try {
        return BlobServiceClient.fromConnectionString(config.connectionString, SDK_OPTIONS);
      } catch (err) {
        // Never echo the connection string: it holds the account key.
        throw new StorageError(
          'STORAGE_CONFIG_INVALID',
          `Invalid storage connection string: ${(err as Error).message}`,
          { cause: err },
        );
      }
    case 'account_url':
      return new BlobServiceClient(
        config.accountUrl,
        new DefaultAzureCredential(
          config.managedIdentityClientId ? { managedIdentityClientId: config.managedIdentityClientId } : {},
        ),
        SDK_OPTIONS,
      );
  }
}

function toBlobInfo(b: BlobItem, options: ListOptions): BlobInfo {
  return {
    name: b.name,
    size: b.properties.contentLength ?? 0,
    contentType: b.properties.contentType || null,
    lastModified: b.properties.lastModified,
    etag: quoteEtag(b.properties.etag),
    ...(options.includeMetadata ? { metadata: b.metadata ?? {} } : {}),
    ...(options.includeTags ? { tags: b.tags ?? {} } : {}),
  };
}

function isNotFound(err: unknown): err is RestError {
  return err instanceof RestError && err.statusCode === 404;
}

class AzureBlobStorage implements BlobStorage {
  readonly config: StorageConfig;
  readonly #service: BlobServiceClient;
  readonly #baseUrl: string;
  readonly #budget: StorageBudget;

  constructor(config: StorageConfig, service: BlobServiceClient) {
    this.config = config;
    this.#service = service;
    this.#budget = budgetOf(config);
    // The service URL carries the SAS token when the connection string has one: drop it.
    const u = new URL(service.url);
    this.#baseUrl = `${u.origin}${u.pathname.replace(/\/$/, '')}`;
  }

  #run<T>(what: string, signal: AbortSignal | undefined, fn: Parameters<typeof withBudget<T>>[3]): Promise<T> {
    return withBudget(this.#budget, what, signal, fn);
  }

  #container(container: string): ContainerClient {
    return this.#service.getContainerClient(assertContainerName(container));
  }

  #notFound(err: unknown, container: string, blob?: string): never {
    if (isNotFound(err)) {
      if (err.code === 'ContainerNotFound' || blob === undefined) {
        throw new StorageError('CONTAINER_NOT_FOUND', `Container ${JSON.stringify(container)} does not exist`, {
          cause: err,
        });
      }
      throw new StorageError('BLOB_NOT_FOUND', `Blob ${container}/${blob} does not exist`, { cause: err });
    }
    // SDK errors can quote request URLs; with a SAS connection string those carry the signature.
    throw redactError(err);
  }

  async *listPages(container: string, options: ListOptions = {}): AsyncIterable<BlobInfo[]> {
    const client = this.#container(container);
    if (options.prefix) assertBlobPath(options.prefix, { prefix: true });
    const maxPageSize = Math.min(options.pageSize ?? 5000, 5000);
    // One page per budgeted call; a retried page resumes from the last continuation token.
    let continuationToken: string | undefined;
    for (;;) {
      const next = await this.#sdkFlatPage(client, container, options, maxPageSize, continuationToken);
      if (next.done) return;
      yield next.value.segment.blobItems.map((b) => toBlobInfo(b, options));
      continuationToken = next.value.continuationToken;
      if (!continuationToken) return;
    }
  }

  async *listPagesStreamed(container: string, options: ListOptions = {}): AsyncIterable<BlobInfo[]> {
    const client = this.#container(container);
    if (options.prefix) assertBlobPath(options.prefix, { prefix: true });
    const raw = rawListing(client);
    if (!raw) {
      // An SDK without the raw List Blobs operation: its own listing, the same pages.
      yield* this.listPages(container, options);
      return;
    }
    const maxPageSize = Math.min(options.pageSize ?? 5000, 5000);
    const include = [
      ...(options.includeMetadata ? ['metadata' as const] : []),
      ...(options.includeTags ? ['tags' as const] : []),
    ];
    // One page per budgeted call, its body read within the call (each chunk counts as
    // progress); a retried page starts again from the same marker.
    let marker: string | undefined;
    for (;;) {
      const page = await this.#run(`listing ${container}`, options.signal, async ({ signal, progress }) => {
        const r = await raw.listBlobFlatSegmentApacheArrow({
          prefix: options.prefix || undefined,
          marker,
          maxPageSize,
          ...(include.length > 0 ? { include } : {}),
          abortSignal: signal,
          // XML only: the body is parsed here (the operation asks for Apache Arrow by default).
          requestOptions: { customHeaders: { accept: 'application/xml' } },
        });
        progress();
        const body = r.readableStreamBody;
        if (!body || !/^\s*(application|text)\/xml\b/i.test(r.contentType ?? '')) {
          (body as Readable | undefined)?.destroy();
          return null;
        }
        return parseListBody(body as Readable, options, signal, progress);
      }).catch((err: unknown) => this.#notFound(err, container));
      if (page === null) {
        // Not XML (a service answering in another format): this page through the SDK.
        const next = await this.#sdkFlatPage(client, container, options, maxPageSize, marker);
        if (next.done) return;
        yield next.value.segment.blobItems.map((b) => toBlobInfo(b, options));
        marker = next.value.continuationToken || undefined;
      } else {
        yield page.blobs;
        marker = page.nextMarker || undefined;
      }
      if (!marker) return;
    }
  }

  #sdkFlatPage(
    client: ContainerClient,
    container: string,
    options: ListOptions,
    maxPageSize: number,
    continuationToken: string | undefined,
  ) {
    return this.#run(`listing ${container}`, options.signal, ({ signal }) =>
      client
        .listBlobsFlat({
          prefix: options.prefix || undefined,
          includeMetadata: options.includeMetadata ?? false,
          includeTags: options.includeTags ?? false,
          abortSignal: signal,
        })
        .byPage({ maxPageSize, ...(continuationToken ? { continuationToken } : {}) })
        .next(),
    ).catch((err: unknown) => this.#notFound(err, container));
  }

  async *listHierarchyPages(container: string, options: ListOptions = {}): AsyncIterable<HierarchyPage> {
    const client = this.#container(container);
    if (options.prefix) assertBlobPath(options.prefix, { prefix: true });
    const maxPageSize = Math.min(options.pageSize ?? 5000, 5000);
    let continuationToken: string | undefined;
    for (;;) {
      const next = await this.#run(`listing ${container}`, options.signal, ({ signal }) =>
        client
          .listBlobsByHierarchy('/', {
            prefix: options.prefix || undefined,
            includeMetadata: options.includeMetadata ?? false,
            includeTags: options.includeTags ?? false,
            abortSignal: signal,
          })
          .byPage({ maxPageSize, ...(continuationToken ? { continuationToken } : {}) })
          .next(),
      ).catch((err: unknown) => this.#notFound(err, container));
      if (next.done) return;
      const page = next.value;
      yield {
        prefixes: (page.segment.blobPrefixes ?? []).map((p) => p.name),
        blobs: page.segment.blobItems.map((b) => toBlobInfo(b, options)),
      };
      continuationToken = page.continuationToken;
      if (!continuationToken) return;
    }
  }

  async *list(container: string, options: ListOptions = {}): AsyncIterable<BlobInfo> {
    for await (const page of this.listPages(container, options)) yield* page;
  }

  async stat(container: string, blob: string, options: { signal?: AbortSignal } = {}): Promise<BlobStat> {
    const client = this.#container(container).getBlobClient(assertBlobPath(blob));
    try {
      const p = await this.#run(`stat ${container}/${blob}`, options.signal, ({ signal }) =>
        client.getProperties({ abortSignal: signal }),
      );
      return {
        exists: true,
        name: blob,
        size: p.contentLength ?? 0,
        contentType: p.contentType || null,
        lastModified: p.lastModified ?? new Date(0),
        etag: quoteEtag(p.etag ?? ''),
        metadata: p.metadata ?? {},
      };
    } catch (err) {
      if (!isNotFound(err)) throw redactError(err);
      if (err.code === 'BlobNotFound') return { exists: false, name: blob };
      // Without an error code (HEAD has no body) tell a missing container apart explicitly.
      if (err.code === 'ContainerNotFound' || !(await this.containerExists(container))) this.#notFound(err, container);
      return { exists: false, name: blob };
    }
  }

  async readStream(
    container: string,
    blob: string,
    options: { offset?: number; count?: number; signal?: AbortSignal } = {},
  ): Promise<Readable> {
    const client = this.#container(container).getBlobClient(assertBlobPath(blob));
    try {
      // The budget covers the request up to its headers; the body then streams at the reader's
      // pace (a stalled body is the reader's to time out).
      const r = await this.#run(`read ${container}/${blob}`, options.signal, ({ signal }) =>
        client.download(options.offset ?? 0, options.count, { abortSignal: signal }),
      );
      return r.readableStreamBody as Readable;
    } catch (err) {
      this.#notFound(err, container, blob);
    }
  }

  async downloadToFile(
    container: string,
    blob: string,
    file: string,
    options: { signal?: AbortSignal; etag?: string } = {},
  ): Promise<number> {
    const client = this.#container(container).getBlobClient(assertBlobPath(blob));
    try {
      // Each attempt writes the file from the start; its timeout restarts with every chunk.
      return await this.#run(`download ${container}/${blob}`, options.signal, async ({ signal, progress }) => {
        const r = await client.download(0, undefined, {
          abortSignal: signal,
          ...(options.etag ? { conditions: { ifMatch: quoteEtag(options.etag) } } : {}),
        });
        progress();
        await pipeline(r.readableStreamBody as Readable, ticker(progress), createWriteStream(file), { signal });
        return r.contentLength ?? (await fsStat(file)).size;
      });
    } catch (err) {
      if (options.etag && (err as RestError).statusCode === 412) {
        throw new StorageError(
          'BLOB_CHANGED',
          `Blob ${container}/${blob} was replaced (its ETag is no longer ${options.etag})`,
          { cause: err },
        );
      }
      this.#notFound(err, container, blob);
    }
  }

  #uploadOptions(blob: string, options: UploadOptions, signal: AbortSignal, progress: () => void) {
    return {
      blobHTTPHeaders: { blobContentType: options.contentType ?? guessContentType(blob) },
      metadata: options.metadata,
      abortSignal: signal,
      onProgress: progress,
    };
  }

  async #upload(
    container: string,
    blob: string,
    open: () => Readable,
    options: UploadOptions,
    retry: boolean,
  ): Promise<void> {
    const client = this.#container(container).getBlockBlobClient(assertBlobPath(blob));
    const budget = retry ? this.#budget : { ...this.#budget, maxAttempts: 1 };
    try {
      await withBudget(budget, `upload ${container}/${blob}`, options.signal, ({ signal, progress }) =>
        client.uploadStream(open(), 4 * 1024 * 1024, 4, this.#uploadOptions(blob, options, signal, progress)),
      );
    } catch (err) {
      this.#notFound(err, container);
    }
  }

  /** A stream can be read once: one attempt (timed out without progress); the task retries. */
  async uploadStream(container: string, blob: string, stream: Readable, options: UploadOptions = {}): Promise<void> {
    await this.#upload(container, blob, () => stream, options, false);
  }

  async uploadFile(container: string, blob: string, file: string, options: UploadOptions = {}): Promise<number> {
    const { size } = await fsStat(file);
    // Streams rather than uploadFile(): the same code path works for any Readable and keeps
    // memory at a few blocks for multi-GB files. A retry reads the file again from the start.
    await this.#upload(container, blob, () => createReadStream(file), options, true);
    return size;
  }

  async uploadData(container: string, blob: string, data: Buffer | string, options: UploadOptions = {}): Promise<void> {
    const client = this.#container(container).getBlockBlobClient(assertBlobPath(blob));
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      // No progress ticks: a single PUT reports bytes handed to the socket, not bytes stored.
      await this.#run(`upload ${container}/${blob}`, options.signal, ({ signal }) =>
        client.uploadData(
          buf,
          this.#uploadOptions(blob, options, signal, () => {}),
        ),
      );
    } catch (err) {
      this.#notFound(err, container);
    }
  }

  async delete(container: string, blob: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const client = this.#container(container).getBlobClient(assertBlobPath(blob));
    const r = await this.#run(`delete ${container}/${blob}`, options.signal, ({ signal }) =>
      client.deleteIfExists({ abortSignal: signal, deleteSnapshots: 'include' }),
    );
    return r.succeeded;
  }

  async containerExists(container: string): Promise<boolean> {
    const client = this.#container(container);
    return this.#run(`existence check of ${container}`, undefined, ({ signal }) =>
      client.exists({ abortSignal: signal }),
    );
  }

  async ensureContainer(container: string): Promise<boolean> {
    const client = this.#container(container);
    const r = await this.#run(`create ${container}`, undefined, ({ signal }) =>
      client.createIfNotExists({ abortSignal: signal }),
    );
    return r.succeeded;
  }

  async setPublicRead(container: string, publicRead: boolean): Promise<void> {
    const client = this.#container(container);
    await this.#run(`access policy of ${container}`, undefined, ({ signal }) =>
      client.setAccessPolicy(publicRead ? 'blob' : undefined, undefined, { abortSignal: signal }),
    );
  }

  async deleteContainer(container: string): Promise<boolean> {
    const client = this.#container(container);
    const r = await this.#run(`delete ${container}`, undefined, ({ signal }) =>
      client.deleteIfExists({ abortSignal: signal }),
    );
    return r.succeeded;
  }

  blobUrl(container: string, blob: string): string {
    return blobUrlFrom(this.#baseUrl, container, blob);
  }
}

/** The SDK's raw List Blobs (flat) operation, which returns the body unparsed. */
interface RawListing {
  listBlobFlatSegmentApacheArrow(options: {
    prefix?: string;
    marker?: string;
    maxPageSize?: number;
    include?: Array<'metadata' | 'tags'>;
    abortSignal?: AbortSignal;
    requestOptions?: { customHeaders?: Record<string, string> };
  }): Promise<{ contentType?: string; readableStreamBody?: NodeJS.ReadableStream }>;
}

/**
 * The container client's generated operations (the SDK keeps them private): requests sent
 * there go through the client's own pipeline, so shared key, SAS and token credentials, the
 * API version header and the SDK's error responses (a RestError with the service's code) all
 * stay what `listBlobsFlat` has. Null if this SDK version has no such operation.
 */
function rawListing(client: ContainerClient): RawListing | null {
  const ctx = (client as unknown as { containerContext?: Partial<RawListing> }).containerContext;
  return typeof ctx?.listBlobFlatSegmentApacheArrow === 'function' ? (ctx as RawListing) : null;
}

/** Reads a List Blobs body through the streaming parser; the signal destroys it mid-way. */
async function parseListBody(
  body: Readable,
  options: ListOptions,
  signal: AbortSignal,
  progress: () => void,
): Promise<{ blobs: BlobInfo[]; nextMarker: string }> {
  const parser = new ListBlobsXmlParser(options);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const onAbort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    signal.throwIfAborted();
    const blobs: BlobInfo[] = [];
    for await (const chunk of body) {
      progress();
      parser.write(typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true }));
      for (const b of parser.take()) blobs.push(b);
    }
    parser.write(decoder.decode());
    let end;
    try {
      end = parser.end();
    } catch (err) {
      // A body cut short is a network failure (retried), not a malformed answer.
      throw Object.assign(new Error('The List Blobs response ended early', { cause: err }), { code: 'ECONNRESET' });
    }
    for (const b of end.blobs) blobs.push(b);
    return { blobs, nextMarker: end.nextMarker };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** A pass-through that reports each chunk (a download's progress). */
function ticker(progress: () => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      progress();
      done(null, chunk);
    },
  });
}

/** `<base>/<container>/<blob>` with each blob segment percent-encoded. */
export function blobUrlFrom(baseUrl: string, container: string, blob: string): string {
  const path = assertBlobPath(blob).split('/').map(encodeURIComponent).join('/');
  return `${baseUrl.replace(/\/$/, '')}/${assertContainerName(container)}/${path}`;
}
