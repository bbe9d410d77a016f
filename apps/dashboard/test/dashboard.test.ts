/**
 * The dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core) against
 * real servers (createApp: PostgreSQL, pg-boss, Azurite, a worker), each in its own schema.
 * One browser for the file; every test fails if the page logs an error to its console.
 * Screenshots go to apps/dashboard/test-results/ (ignored by git).
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync, crc32 } from 'node:zlib';
import { upsertCollection, upsertItem } from '@coremachine/geo/stac';
import helloWorld from '@coremachine/job-hello-world';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import type { JobView } from '@coremachine/core-machine';
import { createApp, parseEnv, type App } from '@coremachine/server';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const SHOTS = fileURLToPath(new URL('../test-results/', import.meta.url));
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A small valid PNG (solid colour), as GDAL writes a quicklook. */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, 0x60)]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const settled = (app: App, jobId: string, status: JobView['status']) =>
  until(`job ${jobId} ${status}`, async () => {
    const job = await app.machine.requireJob(jobId);
    return job.status === status ? job : null;
  });

describe('dashboard in headless Chromium', () => {
  /** maxAttempts 1: an injected failure fails the job at once. */
  let app: App;
  /** Retries an hour apart: a failing task keeps its job processing, to be cancelled. */
  let slow: App;
  let browser: Browser;
  let page: Page;
  let consoleErrors: string[];
  /** Console lines a test expects (the browser logs every 4xx response as an error). */
  let expectedConsole: RegExp[];
  const schemas = [
    uniqueSchema('cmdash'),
    uniqueSchema('cmdash'),
    uniqueSchema('cmdashstac'),
    uniqueSchema('cmdash'),
  ] as const;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const env = (schema: string) =>
      parseEnv({ CM_API_PORT: '0', CM_SCHEMA: schema, CM_STAC_SCHEMA: schemas[2], CM_LOG_LEVEL: 'error' });
    [app, slow, browser] = await Promise.all([
      createApp({ env: env(schemas[0]), plugins: [helloWorld], config: { maxAttempts: 1, retryBaseDelayMs: 50 } }),
      createApp({
        env: env(schemas[1]),
        plugins: [helloWorld],
        config: { maxAttempts: 3, retryBaseDelayMs: 3_600_000, retryMaxDelayMs: 3_600_000 },
      }),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([app?.close(), slow?.close()]);
    await Promise.all(schemas.map((s) => dropSchemas(s)));
  });

  beforeEach(async () => {
    consoleErrors = [];
    expectedConsole = [];
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error' && !expectedConsole.some((r) => r.test(m.text()))) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  });
  afterEach(async () => {
    await page.close();
    expect(consoleErrors).toEqual([]);
  });

  /** No horizontal scrolling: the page fits the viewport's width. */
  const fitsWidth = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  it('submits hello_world from the form and watches it complete without reloading; resubmitting says "already submitted"', async () => {
    const message = `from the form ${Date.now()}`;
    await page.goto(`${app.url}/submit?type=hello_world`);
    // Generated from the JSON Schema: default filled in, description shown.
    await expect.poll(() => page.inputValue('#field-message')).toBe('Hello World');
    expect(await page.textContent('[data-field=message] .help')).toContain('Greeting text');
    expect(await page.inputValue('#field-failure_rate')).toBe('0');
    // n's default survives its numeric-text coercion in the JSON Schema.
    expect(await page.inputValue('#field-n')).toBe('3');
    expect(await page.textContent('[data-field=n] .help')).toContain('default 3');
    await page.fill('#field-n', '4');
    await page.fill('#field-message', message);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/jobs\/[0-9a-f]{64}$/);
    const jobId = page.url().split('/').pop()!;
    await page.locator('#job-title .status', { hasText: 'completed' }).waitFor({ timeout: 20_000 });
    // The same document all along (no reload): the marker set before submitting is still there.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(await page.getAttribute('[data-stage=greeting] [role=progressbar]', 'aria-valuenow')).toBe('4');
    expect(await page.textContent('[data-stage=reply] .stage-count')).toBe('4/4');
    await expect.poll(() => page.locator('.tasks tbody tr').count()).toBe(8);
    expect(await page.textContent('[aria-label=Result]')).toContain('"greetings_succeeded": 4');
    const job = await app.machine.requireJob(jobId);
    expect(job).toMatchObject({ status: 'completed', parameters: { n: 4, message } });
    await page.screenshot({ path: `${SHOTS}job-1280.png`, fullPage: true });
    expect(await fitsWidth()).toBe(true);

    // The same parameters again: the API answers with the existing job, the form says so and opens it.
    await page.goto(`${app.url}/submit?type=hello_world`);
    await page.fill('#field-n', '4');
    await page.fill('#field-message', message);
    await page.click('button[type=submit]');
    expect(await page.locator('.notice').textContent()).toContain('Already submitted');
    await page.waitForURL(`${app.url}/jobs/${jobId}`);

    // Phone width: the job page and the list fit without horizontal scrolling.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#job-title .status', { hasText: 'completed' }).waitFor();
    expect(await fitsWidth()).toBe(true);
    await page.screenshot({ path: `${SHOTS}job-390.png`, fullPage: true });
    await page.goto(`${app.url}/jobs`);
    await page.locator(`tr[data-job-id="${jobId}"]`).waitFor();
    expect(await fitsWidth()).toBe(true);
    await page.screenshot({ path: `${SHOTS}jobs-390.png`, fullPage: true });
  });

  it('lists jobs live: a job submitted elsewhere appears and completes in the open list', async () => {
    await page.goto(`${app.url}/jobs`);
    await page.locator('table.jobs').waitFor();
    const { jobId } = await app.machine.submit('hello_world', { n: 2, message: `live ${Date.now()}` });
    const row = page.locator(`tr[data-job-id="${jobId}"]`);
    await row.locator('.status', { hasText: 'completed' }).first().waitFor({ timeout: 20_000 });
    // Filters: by status (failed: this completed job leaves the list) and by id prefix.
    await page.selectOption('select >> nth=1', 'failed');
    await row.waitFor({ state: 'detached' });
    await page.fill('input[placeholder="id prefix"]', jobId.slice(0, 10));
    await page.click('button:has-text("Find")');
    await page.waitForURL(`${app.url}/jobs/${jobId}`);
    await page.screenshot({ path: `${SHOTS}jobs-1280.png`, fullPage: true });
  });

  it('shows an invalid value as the field error with the API message and submits nothing', async () => {
    expectedConsole = [/status of 400/];
    const before = (await app.machine.listJobs({ limit: 200 })).items.length;
    await page.goto(`${app.url}/submit?type=hello_world`);
    await page.locator('#field-n').waitFor();
    await page.fill('#field-n', 'ten');
    await page.click('button[type=submit]');
    const fieldError = page.locator('[data-field=n] .field-error');
    await fieldError.waitFor();
    expect(await fieldError.textContent()).toBe('n n must be an integer from 1 to 1000');
    expect(await page.getAttribute('#field-n', 'aria-invalid')).toBe('true');
    expect(await page.textContent('.error .error-code')).toBe('CM_ERR_INVALID_PARAMETERS');
    expect(page.url()).toBe(`${app.url}/submit?type=hello_world`);
    expect((await app.machine.listJobs({ limit: 200 })).items.length).toBe(before);
    await page.screenshot({ path: `${SHOTS}submit-invalid.png`, fullPage: true });
  });

  it('shows a failed job with its code and message and no stack, and retries it after confirmation', async () => {
    const { jobId } = await app.machine.submit('hello_world', { n: 1, message: `fail ${Date.now()}`, failure_rate: 1 });
    await settled(app, jobId, 'failed');
    await page.goto(`${app.url}/jobs/${jobId}`);
    const jobError = page.locator('[aria-label="Job error"]');
    await jobError.waitFor();
    expect(await jobError.locator('.error-code').textContent()).toBe('INJECTED_FAILURE');
    expect(await jobError.locator('.error-message').textContent()).toContain('greeting 0 failed on purpose');
    await page.locator('.tasks .task-error .error-code', { hasText: 'INJECTED_FAILURE' }).waitFor();
    const text = (await page.textContent('body'))!;
    expect(text).not.toMatch(/\bat .+\.(ts|js):\d+|node:internal|\/src\//);
    await page.screenshot({ path: `${SHOTS}job-failed.png`, fullPage: true });

    await page.click('button:has-text("Retry")');
    const confirm = page.locator('[aria-label="Confirm retry"]');
    expect(await confirm.textContent()).toContain('Run the failed and cancelled tasks');
    expect((await app.machine.requireJob(jobId)).status).toBe('failed'); // nothing happens before confirming
    await confirm.locator('button:has-text("Yes, retry")').click();
    await page
      .locator('.event-message', { hasText: 'retry requested; 1 task(s) queued again' })
      .waitFor({ timeout: 20_000 });
    // failure_rate 1: the re-run fails again, and the page follows it there live.
    await page.locator('#job-title .status', { hasText: 'failed' }).waitFor({ timeout: 20_000 });
    const events = await app.machine.events(jobId, 0, 100);
    expect(events.filter((e) => e.kind === 'job_failed').length).toBe(2);
  });

  it('cancels a running job from its page after confirmation', async () => {
    const { jobId } = await slow.machine.submit('hello_world', {
      n: 2,
      message: `slow ${Date.now()}`,
      failure_rate: 1,
    });
    // Both greetings failed once and wait an hour for their retry: the job is processing.
    await until('two failed attempts', async () => {
      const tasks = await slow.machine.listTasks(jobId, { stage: 1, limit: 10 });
      return tasks.items.length === 2 && tasks.items.every((t) => t.attempts === 1 && t.status === 'queued');
    });
    await page.goto(`${slow.url}/jobs/${jobId}`);
    await page.locator('#job-title .status', { hasText: 'processing' }).waitFor();
    // Why it waits: the retrying tasks, with their error.
    await page
      .locator('[aria-label="Why it is waiting"]', {
        hasText: 'is retrying: attempt 1 of 3 failed with INJECTED_FAILURE',
      })
      .waitFor();
    // The stage says when the next retry is due: the engine's instant, about an hour away.
    const engineWaits = (await slow.machine.requireJob(jobId)).stages[0]?.waiting;
    expect(engineWaits?.retryScheduled).toBe(2);
    const dueAt = engineWaits?.nextRetryAt ?? '';
    const dueIn = new Date(dueAt).getTime() - Date.now();
    expect(dueIn).toBeGreaterThan(50 * 60_000);
    expect(dueIn).toBeLessThanOrEqual(60 * 60_000);
    const retryLine = page.locator('[aria-label="What greeting waits for"] li[data-wait="retry"]');
    await retryLine.waitFor();
    expect(await retryLine.locator('time').getAttribute('datetime')).toBe(dueAt);
    expect(await retryLine.textContent()).toMatch(
      /^2 task\(s\) retrying; the next retry is due .+ \(in (59|60) min\)$/,
    );
    expect(await retryLine.locator('time').textContent()).toBe(
      await page.evaluate(
        (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }),
        dueAt,
      ),
    );
    await page.screenshot({ path: `${SHOTS}job-waiting.png`, fullPage: true });
    await page.click('button:has-text("Cancel")');
    await page.locator('[aria-label="Confirm cancel"] button:has-text("Yes, cancel")').click();
    await page.locator('#job-title .status', { hasText: 'cancelled' }).waitFor({ timeout: 10_000 });
    await page.locator('.event-message', { hasText: 'cancelled; 2 queued task(s) dropped' }).waitFor();
    expect((await slow.machine.requireJob(jobId)).status).toBe('cancelled');
    const tasks = await slow.machine.listTasks(jobId, { stage: 1, limit: 10 });
    expect(tasks.items.map((t) => t.status)).toEqual(['cancelled', 'cancelled']);
  });

  it('shows the plugins compliance table with a mark per contract element', async () => {
    await page.goto(`${app.url}/plugins`);
    const row = page.locator('table.compliance tr[data-type=hello_world]');
    await row.waitFor();
    expect(await row.locator('td.mark').count()).toBe(12);
    expect(await row.locator('td.mark', { hasText: '✅' }).count()).toBe(12);
    expect(await page.textContent('#type-hello_world')).toContain('hello_world');
    expect(await page.textContent('table.params')).toContain('Greeting text');
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await fitsWidth()).toBe(true);
    await page.screenshot({ path: `${SHOTS}plugins-390.png`, fullPage: true });
  });

  it('draws a STAC item footprint where its bbox says, and loads its thumbnail', async () => {
    const storage = createStorage(storageConfigFromEnv());
    const blob = `dashboard-e2e/${schemas[2]}.png`;
    await storage.ensureContainer('silver');
    await storage.setPublicRead('silver', true);
    await storage.uploadData('silver', blob, png(64, 48), { contentType: 'image/png' });
    const bbox = [10, 40, 20, 50];
    await upsertCollection(app.machine.pool, schemas[2], {
      type: 'Collection',
      stac_version: '1.0.0',
      id: 'dashboard-e2e',
      description: 'footprints for the dashboard test',
      license: 'proprietary',
      extent: { spatial: { bbox: [bbox] }, temporal: { interval: [[null, null]] } },
      links: [],
    } as never);
    await upsertItem(app.machine.pool, schemas[2], {
      type: 'Feature',
      stac_version: '1.0.0',
      stac_extensions: [],
      id: 'tile-a',
      collection: 'dashboard-e2e',
      bbox,
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [10, 40],
            [20, 40],
            [20, 50],
            [10, 50],
            [10, 40],
          ],
        ],
      },
      properties: { datetime: '2024-01-01T00:00:00Z' },
      assets: { thumbnail: { href: storage.blobUrl('silver', blob), type: 'image/png', roles: ['thumbnail'] } },
      links: [],
    } as never);
    await page.goto(`${app.url}/catalog?collection=dashboard-e2e`);
    const footprint = page.locator('path[data-item="tile-a"]');
    await footprint.waitFor();
    // Plate carrée in the SVG's own units: x = lon + 180, y = 90 - lat.
    const box = await footprint.evaluate((el) => {
      const b = (el as SVGGraphicsElement).getBBox();
      return [b.x, b.y, b.width, b.height].map((v) => Math.round(v * 1000) / 1000);
    });
    expect(box).toEqual([190, 40, 10, 10]);
    // The bundled basemap (Natural Earth land) spans the world: 180°W to 180°E, Antarctica to the Arctic.
    const land = await page.locator('path[data-basemap]').evaluate((el) => {
      const b = (el as SVGGraphicsElement).getBBox();
      return { x: b.x, y: b.y, width: b.width, height: b.height };
    });
    expect(land.x).toBeLessThan(1);
    expect(land.width).toBeGreaterThan(358);
    expect(land.y).toBeLessThan(10); // northern coasts of Greenland, beyond 80°N
    expect(land.y + land.height).toBeGreaterThan(175); // Antarctica, past 85°S
    const img = page.locator('img.thumbnail');
    await expect
      .poll(() => img.evaluate((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth), {
        timeout: 10_000,
      })
      .toBe(64);
    expect(await img.getAttribute('alt')).toBe('Thumbnail of tile-a');
    await page.screenshot({ path: `${SHOTS}catalog-1280.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await fitsWidth()).toBe(true);
    await page.screenshot({ path: `${SHOTS}catalog-390.png`, fullPage: true });
  });

  it('stays responsive with 10,000 jobs and a 10,000-task job (pages, not everything at once)', async () => {
    const { jobs, stages, tasks } = slow.machine.t;
    const big = 'f'.repeat(8) + '0'.repeat(56);
    await slow.machine.pool.query(
      `INSERT INTO ${jobs} (id, type, plugin_version, parameters, status, current_stage, total_stages, created_at)
       SELECT 'c' || lpad(to_hex(i), 63, '0'), 'hello_world', '1.0.0', '{}', 'completed', 2, 2, now() - i * interval '1 second'
       FROM generate_series(1, 10000) i`,
    );
    await slow.machine.pool.query(
      `INSERT INTO ${jobs} (id, type, plugin_version, parameters, status, current_stage, total_stages) VALUES ($1, 'hello_world', '1.0.0', '{"n": 10000}', 'completed', 1, 2)`,
      [big],
    );
    await slow.machine.pool.query(
      `INSERT INTO ${stages} (job_id, stage_index, name, status, total, completed) VALUES ($1, 1, 'greeting', 'completed', 10000, 10000)`,
      [big],
    );
    await slow.machine.pool.query(
      `INSERT INTO ${tasks} (id, job_id, stage_index, key, input, status, attempts, max_attempts, lease_seconds)
       SELECT md5($1 || i), $1, 1, lpad(i::text, 5, '0'), '{}', 'completed', 1, 3, 60 FROM generate_series(0, 9999) i`,
      [big],
    );
    let t0 = Date.now();
    await page.goto(`${slow.url}/jobs`);
    // The bound is the assertion on listMs below; the poll waits as long (vitest's default is 1 s).
    await expect.poll(() => page.locator('table.jobs tbody tr').count(), { timeout: 10_000 }).toBe(25);
    const listMs = Date.now() - t0;
    const firstPage = await page.locator('table.jobs tbody tr').first().getAttribute('data-job-id');
    await page.click('nav[aria-label="Job pages"] button:has-text("Older")');
    await expect
      .poll(() => page.locator('table.jobs tbody tr').first().getAttribute('data-job-id'), { timeout: 10_000 })
      .not.toBe(firstPage);
    expect(await page.locator('table.jobs tbody tr').count()).toBe(25);

    t0 = Date.now();
    await page.goto(`${slow.url}/jobs/${big.slice(0, 10)}`); // a prefix opens the job
    await page.waitForURL(`${slow.url}/jobs/${big}`);
    await expect.poll(() => page.locator('.tasks tbody tr').count(), { timeout: 10_000 }).toBe(50);
    const jobMs = Date.now() - t0;
    expect(await page.textContent('[data-stage=greeting] .stage-count')).toBe('10000/10000');
    await page.click('nav[aria-label="Task pages"] button:has-text("Older")');
    await expect
      .poll(() => page.locator('.tasks tbody tr').first().getAttribute('data-task-key'), { timeout: 10_000 })
      .toBe('00050');
    // The browser keeps only a page of rows: the DOM stays small whatever the job's size.
    expect(await page.evaluate(() => document.querySelectorAll('*').length)).toBeLessThan(2000);
    console.log(`10,000 jobs: first page in ${listMs} ms; 10,000-task job: page in ${jobMs} ms`);
    expect(listMs).toBeLessThan(10_000);
    expect(jobMs).toBeLessThan(10_000);
  });

  it('signs in with an API token when the server has tokens (requests and live streams)', async () => {
    const token = 'dashboard-e2e-token-0123456789abcdef';
    const secured = await createApp({
      env: parseEnv({
        CM_API_PORT: '0',
        CM_SCHEMA: schemas[3],
        CM_STAC_SCHEMA: schemas[2],
        CM_LOG_LEVEL: 'error',
        CM_API_TOKEN: token,
      }),
      plugins: [helloWorld],
    });
    try {
      expectedConsole = [/status of 401/];
      await page.goto(`${secured.url}/jobs`);
      const refused = page.locator('.error', { hasText: 'UNAUTHORIZED' });
      await refused.first().waitFor();
      expect(await refused.first().textContent()).toContain('sign in with an API token');
      await page.click('button:has-text("API token")');
      await page.fill('.token-form input', token);
      await page.click('.token-form button[type=submit]');
      await page.locator('button:has-text("Sign out")').waitFor();
      await page.locator('table.jobs, p.muted:has-text("No jobs match")').first().waitFor();
      // The live list (SSE, token in the query) shows a job submitted after the page opened.
      const { jobId } = await secured.machine.submit('hello_world', { n: 1, message: `token ${Date.now()}` });
      await page
        .locator(`tr[data-job-id="${jobId}"] .status`, { hasText: 'completed' })
        .first()
        .waitFor({ timeout: 20_000 });
      await page.click('button:has-text("Sign out")');
      await refused.first().waitFor();
    } finally {
      await secured.close();
    }
  });

  it('answers every dashboard path with the app (SPA fallback) and a missing asset with 404', async () => {
    const deep = await fetch(`${app.url}/jobs/${'a'.repeat(64)}`);
    expect(deep.status).toBe(200);
    expect(deep.headers.get('content-type')).toContain('text/html');
    expect(await deep.text()).toContain('<div id="root">');
    expect((await fetch(`${app.url}/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${app.url}/health`)).headers.get('content-type')).toContain('application/json');
    // An unknown job: the page shows the API's code and message.
    expectedConsole = [/status of 404/];
    await page.goto(`${app.url}/jobs/${'a'.repeat(64)}`);
    await page.locator('.error .error-code').waitFor({ timeout: 10_000 });
    expect(await page.textContent('.error')).toBe(`CM_ERR_JOB_NOT_FOUND No job with id ${'a'.repeat(64)}`);
  });
});
