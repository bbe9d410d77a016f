import { createServer, type Server } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createStorage,
  ensureAzurite,
  gdalConfigFor,
  isTransientStorageError,
  parseStorageConfig,
  type AzuriteHandle,
  type BlobStorage,
  type StorageBudgetInput,
} from '../src/index.ts';

// Time budgets against a frozen Azurite (SIGSTOP, an Azurite of this test's own) and against a
// throttling HTTP endpoint: every call ends within its budget with a transient code.
const PORT = 10_000 + 900 + (process.pid % 800);
const budget: StorageBudgetInput = {
  requestTimeoutMs: 500,
  totalTimeoutMs: 2_000,
  maxAttempts: 10,
  retryBaseDelayMs: 100,
  retryMaxDelayMs: 300,
};

describe('storage time budgets', () => {
  let azurite: AzuriteHandle;
  let storage: BlobStorage;
  beforeAll(async () => {
    azurite = await ensureAzurite({ port: PORT, location: await mkdtemp(join(tmpdir(), 'cm-azurite-budget-')) });
    storage = createStorage(parseStorageConfig({ kind: 'azurite', endpoint: azurite.endpoint, budget }));
    await storage.ensureContainer('frozen');
    await storage.uploadData('frozen', 'a.txt', 'hello');
  });
  afterAll(async () => {
    if (azurite?.pid) process.kill(azurite.pid, 'SIGCONT');
    await azurite?.stop();
  });

  const timed = async <T>(p: Promise<T>) => {
    const t0 = Date.now();
    const r = await p.then(
      (value) => ({ value, error: undefined }),
      (error: unknown) => ({ value: undefined, error }),
    );
    return { ...r, ms: Date.now() - t0 };
  };

  it('a frozen endpoint: each call fails STORAGE_TIMEOUT within its budget, and works again after SIGCONT', async () => {
    expect(azurite.started).toBe(true);
    process.kill(azurite.pid!, 'SIGSTOP');
    try {
      const calls = await Promise.all([
        timed(storage.stat('frozen', 'a.txt')),
        timed(storage.containerExists('frozen')),
        timed(
          (async () => {
            for await (const b of storage.list('frozen')) void b;
          })(),
        ),
        timed(storage.uploadData('frozen', 'b.txt', 'late')),
        timed(storage.downloadToFile('frozen', 'a.txt', join(tmpdir(), `cm-budget-${process.pid}.txt`))),
      ]);
      for (const c of calls) {
        expect(c.error).toMatchObject({ code: 'STORAGE_TIMEOUT', permanent: false });
        expect(isTransientStorageError(c.error)).toBe(true);
        expect((c.error as Error).message).toMatch(
          /did not answer .* within its time budget \(500 ms per request; \d attempt/,
        );
        // Total budget 2 s (the last backoff may end a little before it), never a hang.
        expect(c.ms).toBeGreaterThanOrEqual(1_000);
        expect(c.ms).toBeLessThan(3_500);
      }
    } finally {
      process.kill(azurite.pid!, 'SIGCONT');
    }
    const s = await storage.stat('frozen', 'a.txt');
    expect(s).toMatchObject({ exists: true, size: 5 });
  });

  it("the caller's abort ends a call at once with the caller's reason", async () => {
    process.kill(azurite.pid!, 'SIGSTOP');
    try {
      const reason = new Error('cancelled by the job');
      const c = timed(storage.stat('frozen', 'a.txt', { signal: AbortSignal.timeout(200) }));
      const r = await c;
      expect(r.error).toMatchObject({ name: 'TimeoutError' });
      expect(r.ms).toBeLessThan(450);
      const ac = new AbortController();
      setTimeout(() => ac.abort(reason), 100);
      const r2 = await timed(storage.stat('frozen', 'a.txt', { signal: ac.signal }));
      expect(r2.error).toBe(reason);
    } finally {
      process.kill(azurite.pid!, 'SIGCONT');
    }
  });

  it('frozen GDAL /vsiaz/ reads get the same budget', () => {
    expect(gdalConfigFor(storage.config)).toMatchObject({ GDAL_HTTP_TIMEOUT: '1', GDAL_HTTP_MAX_RETRY: '9' });
  });
});

describe('throttling and server errors', () => {
  let server: Server;
  let requests: { method: string; at: number }[] = [];
  let answers: number[] = [];
  let storage: BlobStorage;
  beforeAll(async () => {
    // A blob endpoint that answers by script: the statuses in `answers`, then a blob's HEAD.
    server = createServer((req, res) => {
      requests.push({ method: req.method!, at: Date.now() });
      const status = answers.shift();
      if (status !== undefined) {
        res.writeHead(status, { 'retry-after': status === 429 ? '0' : '', 'x-ms-error-code': 'ServerBusy' });
        res.end();
        return;
      }
      res.writeHead(200, {
        'content-length': '5',
        'content-type': 'text/plain',
        etag: '"0x1"',
        'last-modified': new Date(0).toUTCString(),
        'x-ms-blob-type': 'BlockBlob',
      });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    storage = createStorage(
      parseStorageConfig({ kind: 'azurite', endpoint: `http://127.0.0.1:${port}/devstoreaccount1`, budget }),
    );
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('retries 503 and 429 with backoff, then succeeds', async () => {
    requests = [];
    answers = [503, 429, 500];
    const s = await storage.stat('c1c', 'a.txt');
    expect(s).toMatchObject({ exists: true, size: 5, etag: '"0x1"' });
    expect(requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD', 'HEAD', 'HEAD']);
    // 100 ms base, doubled, with jitter (50-100 %); 429 with Retry-After: 0 at once.
    const gaps = requests.slice(1).map((r, i) => r.at - requests[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[2]).toBeGreaterThanOrEqual(90);
  });

  it('throttled past its attempts: STORAGE_UNAVAILABLE with the status, transient', async () => {
    requests = [];
    answers = Array.from({ length: 20 }, () => 503);
    const err = await storage.stat('c1c', 'a.txt').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', permanent: false, statusCode: 503 });
    expect((err as Error).message).toMatch(/Storage failed stat c1c\/a\.txt \(HTTP 503; \d+ attempt\(s\)/);
    // Stopped by the 2 s total budget before the 10 attempts (delays of up to 300 ms each).
    expect(requests.length).toBeGreaterThanOrEqual(5);
    expect(requests.length).toBeLessThanOrEqual(10);
  });

  it('a 403 is not retried', async () => {
    requests = [];
    answers = [403];
    const err = await storage.stat('c1c', 'a.txt').catch((e: unknown) => e);
    expect(isTransientStorageError(err)).toBe(false);
    expect(requests).toHaveLength(1);
  });
});
