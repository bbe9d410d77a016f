/**
 * The CLI as users run it (`./cm` at the repository root, a real child process) against a real
 * server (createApp: PostgreSQL, pg-boss, Azurite, a worker) in its own schema.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { parseEnv } from '../env.ts';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** At most this many CLI processes at once: the machine has few cores. */
const CONCURRENCY = 3;
let running = 0;
const waiting: Array<() => void> = [];

/** Runs a shell command line from the repository root (so pipes are real pipes). */
async function sh(line: string, env: Record<string, string> = {}): Promise<Run> {
  if (running >= CONCURRENCY) await new Promise<void>((r) => waiting.push(r));
  running += 1;
  try {
    return await shNow(line, env);
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

function shNow(line: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', line], { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out: ${line}\n${stderr}`));
    }, 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('cm, the command line, against a running server', () => {
  let app: App;
  let cm: (args: string) => Promise<Run>;
  let big: string;
  const schema = uniqueSchema('cmcli');

  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({ CM_API_PORT: '0', CM_SCHEMA: schema, CM_LOG_LEVEL: 'error' }),
      config: { maxAttempts: 2, retryBaseDelayMs: 50, retryMaxDelayMs: 50 },
    });
    cm = (args) => sh(`./cm ${args}`, { CM_URL: app.url! });
    // 1,000 tasks of 2 KB each: `cm tasks --json` prints more than 2 MB.
    ({ jobId: big } = await app.machine.submit('hello_world', { n: 1000, message: 'x'.repeat(1000) }));
    for (;;) {
      const job = await app.machine.requireJob(big);
      if (job.status === 'completed') break;
      if (job.status !== 'processing' && job.status !== 'queued') throw new Error(`big job ${job.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
  });

  it('writes its whole output through a pipe to a slow reader (more than 1 MB)', async () => {
    const r = await sh(`./cm tasks ${big} --json --limit 1000 | (sleep 1; cat)`, { CM_URL: app.url! });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(1_000_000);
    const page = JSON.parse(r.stdout) as { items: Array<{ status: string }> };
    expect(page.items).toHaveLength(1000);
    expect(page.items.every((t) => t.status === 'completed')).toBe(true);
    // And the exit code survives the pipe.
    const failed = await sh(`./cm list --limit abc | cat; exit \${PIPESTATUS[0]}`, { CM_URL: app.url! });
    expect(failed.code).toBe(2);
  });

  it('accepts a unique id prefix of at least 8 characters and says when one is ambiguous', async () => {
    const t = app.machine.t.jobs;
    const fake = (tail: string) => `deadbeef${tail.repeat(56 / tail.length)}`;
    for (const id of [fake('0'), fake('1')])
      await app.machine.pool.query(
        `INSERT INTO ${t} (id, type, plugin_version, parameters, total_stages) VALUES ($1, 'hello_world', '1.0.0', '{}', 2)`,
        [id],
      );
    const [list, short, ambiguous, unique, none, tooShort, notHex] = await Promise.all([
      cm('list --limit 200'),
      cm(`get ${big.slice(0, 8)}`),
      cm('get deadbeef'),
      cm('get deadbeef1'),
      cm('get 00000000'),
      cm('get abc1234'),
      cm('get not-an-id'),
    ]);
    // list shows 12-character ids; 8 of them are enough for `get`.
    expect(list.stdout).toContain(`${big.slice(0, 12)}  hello_world`);
    expect(list.stdout).not.toContain(big.slice(0, 13));
    expect(short.code).toBe(0);
    expect(short.stdout.split('\n')[0]).toMatch(new RegExp(`^${big}  hello_world`));
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr.split('\n')[0]).toBe(
      'cm: job id prefix deadbeef is ambiguous: it starts 2 job ids (deadbeef1111, deadbeef0000); give more characters',
    );
    expect(unique.code).toBe(0);
    expect(unique.stdout.split('\n')[0]).toContain(fake('1'));
    expect([none.code, none.stderr.trim()]).toEqual([1, 'cm: no job id starts with 00000000']);
    expect(tooShort.code).toBe(2);
    expect(tooShort.stderr.split('\n')[0]).toBe('cm: job id prefix "abc1234" is too short: give at least 8 characters');
    expect(notHex.code).toBe(2);
    expect(notHex.stderr.split('\n')[0]).toBe('cm: "not-an-id" is not a job id: ids are hexadecimal (0-9, a-f)');
    await app.machine.pool.query(`DELETE FROM ${t} WHERE id LIKE 'deadbeef%'`);
  });

  it('phrases errors as sentences (no JSON dumps) and accepts a stage by name', async () => {
    const [status, limit, stageName, stageBad, badParams, missing, unknownOption] = await Promise.all([
      cm('list --status nope'),
      cm('list --limit abc'),
      cm(`tasks ${big.slice(0, 10)} --stage reply --limit 3`),
      cm(`tasks ${big.slice(0, 10)} --stage greet`),
      cm(`submit hello_world --params '{"n":"ten"}'`),
      cm(`submit ingest_vector --params '{}'`),
      cm('list --colour'),
    ]);
    expect(status.code).toBe(2);
    expect(status.stderr.split('\n')[0]).toBe(
      'cm: --status must be one of queued, processing, completed, completed_with_errors, failed, cancelled (got "nope")',
    );
    expect([limit.code, limit.stderr.split('\n')[0]]).toEqual([
      2,
      'cm: --limit must be a whole number from 1 to 200 (got "abc")',
    ]);
    expect(stageName.code).toBe(0);
    expect(
      stageName.stdout
        .split('\n')
        .slice(1, 4)
        .every((l) => l.startsWith('reply')),
    ).toBe(true);
    expect(stageBad.code).toBe(2);
    expect(stageBad.stderr.split('\n')[0]).toBe(
      'cm: --stage must be a stage number from 1 to 2 or a stage name of this hello_world job (greeting, reply); got "greet"',
    );
    expect(badParams.code).toBe(1);
    expect(badParams.stderr.trim()).toBe(
      'cm: CM_ERR_INVALID_PARAMETERS: invalid parameters\n  params.n: n must be an integer from 1 to 1000',
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('\n  params.blob_name is required');
    expect([unknownOption.code, unknownOption.stderr.split('\n')[0]]).toEqual([2, 'cm: unknown option --colour']);
    for (const r of [status, limit, stageBad, badParams, missing, unknownOption]) {
      expect(r.stderr).not.toMatch(/[[{]\s*"|"code"|\bat .+:\d+:\d+/);
      expect(r.stdout).toBe('');
    }
  });

  it('has --help for every command; types marks required fields and shows defaults', async () => {
    const commands = ['submit', 'get', 'list', 'tasks', 'events', 'cancel', 'retry', 'types', 'compliance', 'blob'];
    const helps = await Promise.all(commands.map((c) => cm(`${c} --help`)));
    helps.forEach((h, i) => {
      expect(h.code).toBe(0);
      expect(h.stdout.startsWith(`usage: cm ${commands[i]}`)).toBe(true);
    });
    expect(helps[2]!.stdout).toContain('--status <s>');
    expect(helps[3]!.stdout).toContain('--stage <n|name>');
    const types = await cm('types');
    expect(types.code).toBe(0);
    // One section per type; `*` marks required parameters, defaults shown.
    const section = (type: string) => types.stdout.split('\n\n').find((t) => t.startsWith(`${type} (v`)) ?? '';
    const line = (type: string, name: string) =>
      section(type)
        .split('\n')
        .find((l) => l.replace('*', ' ').trim().split(/\s+/)[0] === name);
    expect(line('hello_world', 'message')).toMatch(
      /^ {4} {2}message\s+string\s+default "Hello World"\s+Greeting text$/,
    );
    expect(line('hello_world', 'n')).toMatch(/^ {6}n\s+integer 1\.\.1000\s+default 3\s+Number of greeting tasks/);
    expect(line('validate_raster', 'blob_name')).toMatch(/^ {4}\* blob_name\s+string\s+required\s+Path of the raster/);
    expect(line('validate_raster', 'strict_mode')).toMatch(/^ {6}strict_mode\s+boolean\s+default false/);
  });

  it('keeps exit codes and prints no package-manager output: 0 completed, 1 failed (retries shown), 2 usage', async () => {
    const [ok, failed, usage] = await Promise.all([
      cm(`submit hello_world --params '{"n":2,"message":"cli ok ${Date.now()}"}' --wait`),
      cm(`submit hello_world --params '{"n":1,"message":"cli fail ${Date.now()}","failure_rate":1}' --wait`),
      cm('frobnicate'),
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/greeting\s+\[█+\]\s+2\/2 completed/);
    expect(failed.code).toBe(1);
    // The retry as it happened, then the failure with its code.
    expect(failed.stdout).toMatch(
      /· task retried \(stage 1\): attempt 1 failed \(INJECTED_FAILURE: greeting 0 failed on purpose/,
    );
    expect(failed.stdout).toContain('error: INJECTED_FAILURE: greeting 0 failed on purpose');
    expect(usage.code).toBe(2);
    expect(usage.stderr.split('\n')[0]).toBe('cm: unknown command "frobnicate"');
    for (const r of [ok, failed, usage])
      expect(r.stdout + r.stderr).not.toMatch(/ELIFECYCLE|pnpm|npm (ERR|warn)|^\$ /m);
  });

  it('cm rerun --wait runs a settled job again; cm purge and cm delete remove settled jobs', async () => {
    const { jobId } = await app.machine.submit('hello_world', { n: 1, message: `cli rerun ${schema}` });
    for (let i = 0; i < 300 && (await app.machine.requireJob(jobId)).status !== 'completed'; i++)
      await new Promise((r) => setTimeout(r, 100));
    const [rerun, usage] = await Promise.all([cm(`rerun ${jobId.slice(0, 10)} --wait`), cm('purge --status failed')]);
    expect(rerun.code).toBe(0);
    expect(rerun.stdout.split('\n')[0]).toBe(`run 2 of ${jobId} queued`);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--older-than is required');
    const purge = await cm('purge --older-than 30d --status failed,cancelled');
    expect([purge.code, purge.stdout.trim()]).toEqual([0, 'purged 0 job(s): 0 tasks, 0 events']);
    const del = await cm(`delete ${jobId.slice(0, 10)}`);
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(new RegExp(`^deleted ${jobId}: 2 tasks, \\d+ events`));
    expect(await app.machine.getJob(jobId)).toBeNull();
  });
});
