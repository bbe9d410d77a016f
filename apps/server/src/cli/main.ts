/**
 * `cm`: the CoreMachine command line (`./cm <command>` from the repository root).
 *
 *   cm submit <type> --params '<json>' [--wait] [--json]
 *   cm get <id> [--json]     cm list [--status s] [--type t] [--limit n] [--json]
 *   cm tasks <id> [--stage n|name] [--status s] [--json]    cm events <id> [--json]
 *   cm cancel <id>    cm retry <id>    cm types [--json]    cm compliance [--json]
 *   cm rerun <id> [--wait]    cm delete <id>    cm purge --older-than 7d [--status s,...]
 *   cm blob put|ls|get ...
 *
 * Ids may be shortened to a unique prefix of at least 8 characters. Talks to the API at --url
 * or CM_URL (default http://127.0.0.1:3000); `compliance` checks the installed plugins locally.
 * Exit codes: 0 ok, 1 job not completed or API error, 2 usage.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { JobView } from '@coremachine/core-machine';
import { TRPCClientError } from '@trpc/client';
import { parseEnv } from '../env.ts';
import { apiClient, type Api } from './api.ts';
import { eventRow, jobSummary, parameterLines, progressBar, status, table, taskRow } from './render.ts';

// The engine (pg-boss, plugins) loads only for `cm compliance`: every other command starts fast.
const APP_PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));
const TERMINAL_JOB_STATUSES: readonly string[] = ['completed', 'completed_with_errors', 'failed', 'cancelled'];
const JOB_STATUSES = ['queued', 'processing', 'completed', 'completed_with_errors', 'failed', 'cancelled'];
const TASK_STATUSES = ['queued', 'processing', 'completed', 'failed', 'cancelled'];
/** Shortest id prefix accepted, as git does for commits. */
export const MIN_PREFIX = 8;
/** How many characters of an id `cm list` shows (always accepted while unique). */
const SHOWN_PREFIX = 12;

interface Command {
  args: string;
  summary: string;
  options: Record<string, string>;
}

const COMMON = { '--url <url>': 'API base URL (default $CM_URL or http://127.0.0.1:3000)' };
const JSON_OPT = { '--json': 'print JSON instead of text' };
const COMMANDS: Record<string, Command> = {
  submit: {
    args: '<type>',
    summary: 'submit a job; with --wait, follow it and exit 0 only if it completes',
    options: {
      '--params <json>': 'parameters as a JSON object (see `cm types`)',
      '--wait': 'follow the job: progress per stage, retries as they happen',
      ...JSON_OPT,
      ...COMMON,
    },
  },
  get: { args: '<id>', summary: 'show a job', options: { ...JSON_OPT, ...COMMON } },
  list: {
    args: '',
    summary: 'list jobs, newest first',
    options: {
      '--status <s>': `only jobs in this status (${JOB_STATUSES.join(', ')})`,
      '--type <t>': 'only jobs of this type',
      '--limit <n>': 'jobs per page, 1 to 200 (default 20)',
      '--cursor <c>': 'the next page (printed at the end of a full page)',
      ...JSON_OPT,
      ...COMMON,
    },
  },
  tasks: {
    args: '<id>',
    summary: "list a job's tasks",
    options: {
      '--stage <n|name>': 'only this stage, by number or name',
      '--status <s>': `only tasks in this status (${TASK_STATUSES.join(', ')})`,
      '--limit <n>': 'tasks per page, 1 to 1000 (default 100)',
      '--cursor <c>': 'the next page',
      ...JSON_OPT,
      ...COMMON,
    },
  },
  events: { args: '<id>', summary: "a job's timeline", options: { ...JSON_OPT, ...COMMON } },
  cancel: { args: '<id>', summary: 'cancel a queued or processing job', options: { ...JSON_OPT, ...COMMON } },
  retry: { args: '<id>', summary: 're-run a failed or cancelled job', options: { ...JSON_OPT, ...COMMON } },
  rerun: {
    args: '<id>',
    summary: 'run a settled job again, same parameters and id (the ended run stays in its history)',
    options: { '--wait': 'follow the new run; exit 0 only if it completes', ...JSON_OPT, ...COMMON },
  },
  delete: {
    args: '<id>',
    summary: 'delete a settled job with its tasks, events, inventory rows and temporary blobs',
    options: { ...JSON_OPT, ...COMMON },
  },
  purge: {
    args: '',
    summary: 'delete settled jobs older than a duration, in batches (admin)',
    options: {
      '--older-than <d>': 'settled longer ago than this: 7d, 12h, 30m, 90s (required)',
      '--status <s,...>': `only these final statuses (${TERMINAL_JOB_STATUSES.join(', ')})`,
      ...JSON_OPT,
      ...COMMON,
    },
  },
  types: {
    args: '',
    summary: 'job types and their parameters (* required, defaults shown)',
    options: { ...JSON_OPT, ...COMMON },
  },
  compliance: { args: '', summary: 'plugin compliance table (checked locally)', options: { ...JSON_OPT } },
  blob: {
    args: 'put|ls|get ...',
    summary: 'files in and out of blob storage (`cm blob --help`)',
    options: {},
  },
  token: {
    args: 'create|list|revoke ...',
    summary: 'API tokens (`cm token --help`); other commands send $CM_TOKEN',
    options: {},
  },
};

const USAGE = [
  'usage: cm <command> [options]      (cm <command> --help for its options)',
  ...Object.entries(COMMANDS).map(([name, c]) => `  ${`${name} ${c.args}`.padEnd(22)} ${c.summary}`),
  `Job ids may be shortened to a unique prefix of at least ${MIN_PREFIX} characters.`,
  'Exit codes: 0 ok, 1 job failed or API error, 2 usage.',
].join('\n');

function commandHelp(name: string): string {
  const c = COMMANDS[name]!;
  const opts = Object.entries(c.options).map(([o, d]) => `  ${o.padEnd(20)} ${d}`);
  return [
    `usage: cm ${name}${c.args ? ` ${c.args}` : ''} [options]`,
    c.summary,
    ...(opts.length ? ['options:', ...opts] : []),
  ].join('\n');
}

class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}
/** An error already phrased for the user: printed as is, exit 1. */
class CliError extends Error {}

const out = (s: string) => process.stdout.write(s + '\n');
let apiUrl = '';
/** The command being run, named in usage errors. */
let currentCommand: string | undefined;

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    if (topic && COMMANDS[topic] && topic !== 'blob' && topic !== 'token') out(commandHelp(topic));
    else out(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'token') return (await import('./token.ts')).tokenCommand(rest);
  if (command === 'blob') {
    const blobModule = './blob.ts';
    const { blobCommand } = (await import(blobModule)) as { blobCommand: (a: string[]) => Promise<number> };
    return blobCommand(rest);
  }
  if (!COMMANDS[command]) throw new UsageError(`unknown command "${command}"`);
  currentCommand = command;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        params: { type: 'string' },
        wait: { type: 'boolean' },
        json: { type: 'boolean' },
        status: { type: 'string' },
        type: { type: 'string' },
        limit: { type: 'string' },
        stage: { type: 'string' },
        cursor: { type: 'string' },
        'older-than': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(parseArgsSentence(err as Error), command);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(commandHelp(command));
    return 0;
  }
  const allowed = new Set(Object.keys(COMMANDS[command].options).map((o) => o.split(' ')[0]!.slice(2)));
  for (const [name, v] of Object.entries(values))
    if (v !== undefined && !allowed.has(name)) throw new UsageError(`cm ${command} has no option --${name}`, command);
  const expected = COMMANDS[command].args ? COMMANDS[command].args.split(' ').length : 0;
  if (positionals.length > expected)
    throw new UsageError(`cm ${command} takes ${expected || 'no'} argument(s), got ${positionals.length}`, command);

  const env = parseEnv();
  apiUrl = values.url ?? env.CM_URL;
  const api = apiClient(apiUrl, env.CM_TOKEN);
  const print = (data: unknown, human: () => string) => out(values.json ? JSON.stringify(data, null, 2) : human());
  const need = (i: number, what: string) => {
    const v = positionals[i];
    if (!v) throw new UsageError(`missing ${what}`, command);
    return v;
  };
  const jobIdArg = () => resolveJobId(api, need(0, '<id>'));

  switch (command) {
    case 'submit': {
      const type = need(0, '<type>');
      let params: unknown = {};
      if (values.params) {
        try {
          params = JSON.parse(values.params);
        } catch (err) {
          throw new UsageError(`--params is not valid JSON: ${(err as Error).message}`, command);
        }
        if (typeof params !== 'object' || params === null || Array.isArray(params))
          throw new UsageError('--params must be a JSON object, e.g. \'{"n": 5}\'', command);
      }
      const submitted = await api.jobs.submit.mutate({ type, params } as never);
      if (!values.wait) {
        if (values.json) out(JSON.stringify(await api.jobs.get.query({ jobId: submitted.jobId }), null, 2));
        else out(`${submitted.idempotent ? 'existing' : 'submitted'} ${submitted.jobId} (${status(submitted.status)})`);
        return 0;
      }
      if (!values.json) out(`${submitted.idempotent ? 'existing' : 'submitted'} ${submitted.jobId}`);
      const job = await follow(api, submitted.jobId, !values.json);
      if (values.json) out(JSON.stringify(job, null, 2));
      else out(jobSummary(job));
      return job.status === 'completed' ? 0 : 1;
    }
    case 'get': {
      const job = await api.jobs.get.query({ jobId: await jobIdArg() });
      print(job, () => jobSummary(job));
      return 0;
    }
    case 'list': {
      const page = await api.jobs.list.query({
        ...(values.status ? { status: oneOf('--status', values.status, JOB_STATUSES) as never } : {}),
        ...(values.type ? { type: values.type } : {}),
        limit: values.limit ? wholeNumber('--limit', values.limit, 1, 200) : 20,
        cursor: values.cursor ?? null,
      });
      print(
        page,
        () =>
          (page.items.length
            ? table([
                ['ID', 'TYPE', 'STATUS', 'STAGE', 'CREATED'],
                ...page.items.map((j) => [
                  j.id.slice(0, SHOWN_PREFIX),
                  j.type,
                  status(j.status),
                  `${j.currentStage}/${j.totalStages}`,
                  j.createdAt,
                ]),
              ])
            : 'no jobs') + (page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : ''),
      );
      return 0;
    }
    case 'tasks': {
      const jobId = await jobIdArg();
      let stage: number | undefined;
      if (values.stage) {
        const job = await api.jobs.get.query({ jobId });
        stage = stageIndex(values.stage, job);
      }
      const page = await api.jobs.tasks.query({
        jobId,
        ...(stage ? { stage } : {}),
        ...(values.status ? { status: oneOf('--status', values.status, TASK_STATUSES) as never } : {}),
        limit: values.limit ? wholeNumber('--limit', values.limit, 1, 1000) : 100,
        cursor: values.cursor ?? null,
      });
      print(
        page,
        () =>
          (page.items.length
            ? table([['STAGE', 'KEY', 'STATUS', 'ATTEMPTS', 'ERROR'], ...page.items.map(taskRow)])
            : 'no tasks') + (page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : ''),
      );
      return 0;
    }
    case 'events': {
      const events = await api.jobs.events.query({ jobId: await jobIdArg() });
      print(events, () => table([['AT', 'EVENT', 'STAGE', 'MESSAGE'], ...events.map(eventRow)]));
      return 0;
    }
    case 'cancel':
    case 'retry': {
      const jobId = await jobIdArg();
      const job =
        command === 'cancel' ? await api.jobs.cancel.mutate({ jobId }) : await api.jobs.retry.mutate({ jobId });
      print(job, () => jobSummary(job));
      return 0;
    }
    case 'rerun': {
      const jobId = await jobIdArg();
      const job = await api.jobs.rerun.mutate({ jobId });
      if (!values.wait) {
        print(job, () => `run ${job.run} of ${job.id} queued\n${jobSummary(job)}`);
        return 0;
      }
      if (!values.json) out(`run ${job.run} of ${job.id} queued`);
      const done = await follow(api, jobId, !values.json);
      if (values.json) out(JSON.stringify(done, null, 2));
      else out(jobSummary(done));
      return done.status === 'completed' ? 0 : 1;
    }
    case 'delete': {
      const r = await api.jobs.delete.mutate({ jobId: await jobIdArg() });
      print(r, () => `deleted ${r.deleted}: ${counts(r, ['deleted'])}`);
      return 0;
    }
    case 'purge': {
      const olderThan = values['older-than'];
      if (!olderThan) throw new UsageError('--older-than is required, e.g. --older-than 7d', command);
      const statuses = values.status
        ?.split(',')
        .map((s) => oneOf('--status', s.trim(), [...TERMINAL_JOB_STATUSES]) as 'completed');
      const r = await api.jobs.purge.mutate({ olderThan, ...(statuses ? { statuses } : {}) });
      print(r, () =>
        r.skipped
          ? 'another process is purging now; nothing done (try again later)'
          : `purged ${r.jobs} job(s): ${counts(r, ['skipped', 'jobs', 'batches'])}`,
      );
      return 0;
    }
    case 'types': {
      const types = await api.jobs.types.query();
      print(types, () =>
        types
          .map((t) =>
            [
              `${t.type} (v${t.version}): ${t.description}`,
              `  stages: ${t.stages.join(' → ')}`,
              '  parameters (* required):',
              ...parameterLines(t.parametersSchema).map((l) => `    ${l}`),
            ].join('\n'),
          )
          .join('\n\n'),
      );
      return 0;
    }
    case 'compliance': {
      const { discoverPlugins, checkUniqueTypes, formatComplianceTable } = await import('@coremachine/core-machine');
      const { reports } = await discoverPlugins(env.CM_PLUGINS_FROM ?? APP_PACKAGE_JSON);
      checkUniqueTypes(reports);
      print(
        reports,
        () =>
          formatComplianceTable(reports) +
          '\n' +
          reports
            .filter((r) => !r.compliant)
            .flatMap((r) => r.problems.map((p) => `❌ ${r.packageName}: ${p.element}: ${p.message}`))
            .join('\n'),
      );
      return reports.every((r) => r.compliant) ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** A full job id from a full id or a unique prefix of at least MIN_PREFIX characters. */
export async function resolveJobId(api: Api, raw: string): Promise<string> {
  const id = raw.trim().toLowerCase();
  if (/^[0-9a-f]{64}$/.test(id)) return id;
  if (!/^[0-9a-f]+$/.test(id)) throw new UsageError(`"${raw}" is not a job id: ids are hexadecimal (0-9, a-f)`);
  if (id.length > 64) throw new UsageError(`"${raw}" is not a job id: ids have 64 characters`);
  if (id.length < MIN_PREFIX)
    throw new UsageError(`job id prefix "${raw}" is too short: give at least ${MIN_PREFIX} characters`);
  const ids = await api.jobs.findIds.query({ prefix: id, limit: 5 });
  if (ids.length === 0) throw new CliError(`no job id starts with ${id}`);
  if (ids.length > 1)
    throw new UsageError(
      `job id prefix ${id} is ambiguous: it starts ${ids.length === 5 ? '5 or more' : ids.length} job ids (${ids.map((i) => i.slice(0, id.length + 4)).join(', ')}); give more characters`,
    );
  return ids[0]!;
}

function oneOf(option: string, value: string, allowed: string[]): string {
  if (!allowed.includes(value)) throw new UsageError(`${option} must be one of ${allowed.join(', ')} (got "${value}")`);
  return value;
}

function wholeNumber(option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max)
    throw new UsageError(`${option} must be a whole number from ${min} to ${max} (got "${value}")`);
  return n;
}

function stageIndex(value: string, job: JobView): number {
  const byName = job.stages.find((s) => s.name === value);
  if (byName) return byName.index;
  const n = Number(value);
  if (/^\d+$/.test(value) && n >= 1 && n <= job.stages.length) return n;
  throw new UsageError(
    `--stage must be a stage number from 1 to ${job.stages.length} or a stage name of this ${job.type} job (${job.stages.map((s) => s.name).join(', ')}); got "${value}"`,
  );
}

function parseArgsSentence(err: Error): string {
  const code = (err as { code?: string }).code;
  const m = /'(--?[\w-]+)/.exec(err.message);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${m?.[1] ?? ''}`.trim();
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `option ${m?.[1] ?? ''} needs a value`.replace('  ', ' ');
  return err.message.split('\n')[0]!;
}

/**
 * Follows a job through the SSE subscription: one progress bar per stage, redrawn in place on a
 * terminal; retries, failures and stage changes printed as they happen (from the event
 * timeline), and why the current stage is waiting.
 */
function follow(api: Api, jobId: string, draw: boolean): Promise<JobView> {
  return new Promise((resolve, reject) => {
    let drawn = 0;
    let lastEvent = 0;
    let chain = Promise.resolve();
    const tty = process.stdout.isTTY;
    const clear = () => {
      if (tty && drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      drawn = 0;
    };
    const update = async (job: JobView) => {
      const events = await api.jobs.events.query({ jobId, afterId: lastEvent, limit: 500 });
      const waiting = TERMINAL_JOB_STATUSES.includes(job.status) ? [] : await waitingLines(api, job);
      clear();
      for (const e of events) {
        lastEvent = e.id;
        if (e.kind !== 'job_submitted')
          out(`  · ${e.kind.replaceAll('_', ' ')}${e.stage ? ` (stage ${e.stage})` : ''}: ${e.message ?? ''}`);
      }
      const bars = job.stages.filter((s) => s.status !== 'pending').map((s) => '  ' + progressBar(s));
      const lines = [...bars, ...waiting.map((w) => `  waiting: ${w}`)];
      if (tty) {
        process.stdout.write(lines.length ? lines.join('\n') + '\n' : '');
        drawn = lines.length;
      } else if (!TERMINAL_JOB_STATUSES.includes(job.status)) for (const w of waiting) out(`  waiting: ${w}`);
    };
    const sub = api.jobs.watch.subscribe(
      { jobId },
      {
        onData: (data) => {
          const job = ((data as { data?: JobView }).data ?? data) as JobView;
          const terminal = TERMINAL_JOB_STATUSES.includes(job.status);
          if (terminal) sub.unsubscribe();
          chain = chain
            .then(() => (draw ? update(job) : undefined))
            .then(() => {
              if (!terminal) return;
              if (draw) clear();
              resolve(job);
            }, reject);
        },
        onError: (err) => {
          sub.unsubscribe();
          reject(err);
        },
      },
    );
  });
}

/** Why the job's current stage is not moving: queued tasks, retries and their last error, no worker. */
async function waitingLines(api: Api, job: JobView): Promise<string[]> {
  if (job.status === 'queued') return ['the job is queued: its first stage is not planned yet'];
  const stage = job.stages[job.currentStage - 1];
  if (!stage || stage.status !== 'processing') return [];
  const [queued, health] = await Promise.all([
    api.jobs.tasks.query({ jobId: job.id, stage: stage.index, status: 'queued', limit: 200 }),
    api.health.query(),
  ]);
  const lines: string[] = [];
  if (health.workers === 0) lines.push('no worker is running');
  const retrying = queued.items.filter((t) => t.attempts > 0);
  const fresh = queued.items.length - retrying.length;
  // The engine's account (running on which worker, free slot, no live worker, next retry due at).
  if (stage.waiting) lines.push(stage.waiting.summary);
  else if (fresh > 0)
    lines.push(`${fresh}${queued.nextCursor ? '+' : ''} task(s) of ${stage.name} queued for a worker`);
  for (const t of retrying.slice(0, 3))
    lines.push(
      `task ${t.key} retrying after attempt ${t.attempts} of ${t.maxAttempts}${t.error ? ` failed: ${t.error.code}: ${t.error.message}` : ''}`,
    );
  if (retrying.length > 3) lines.push(`${retrying.length - 3} more task(s) retrying`);
  return lines;
}

/** An API issue as a sentence: a missing field "is required". */
function issueSentence(issue: { path: string; message: string }): string {
  if (/received undefined/.test(issue.message) || /^Required$/.test(issue.message)) return `${issue.path} is required`;
  return `${issue.path}: ${issue.message}`;
}

/** What the user reads for an error: sentences, never a JSON dump or a stack. */
export function errorText(err: unknown): { text: string; code: number } {
  if (err instanceof UsageError) {
    const command = err.command ?? currentCommand;
    return {
      text: `cm: ${err.message}\n${command ? `(\`cm ${command} --help\` lists its options)` : USAGE}`,
      code: 2,
    };
  }
  if (err instanceof CliError) return { text: `cm: ${err.message}`, code: 1 };
  if (err instanceof TRPCClientError && !err.data)
    return {
      text: `cm: cannot reach the CoreMachine API at ${apiUrl}: ${(err as Error).message}. Start it with \`make start\` or pass --url.`,
      code: 1,
    };
  if (err instanceof TRPCClientError) {
    const data = err.data as {
      cmCode?: string | null;
      code?: string;
      issues?: Array<{ path: string; message: string }>;
    };
    const issues = data.issues ?? [];
    const code = data.cmCode ?? data.code ?? 'ERROR';
    const looksLikeDump = /^\s*[[{]/.test(err.message);
    const headline =
      issues.length && (looksLikeDump || code === 'CM_ERR_INVALID_PARAMETERS')
        ? code === 'CM_ERR_INVALID_PARAMETERS'
          ? 'invalid parameters'
          : 'invalid input'
        : looksLikeDump
          ? 'the API rejected the request'
          : err.message;
    return {
      text: `cm: ${code}: ${headline}${issues.map((i) => `\n  ${issueSentence(i)}`).join('')}`,
      code: 1,
    };
  }
  return { text: `cm: ${(err as Error).message}`, code: 1 };
}

/** Exits once stdout and stderr have drained: a pipe gets every byte (process.exit alone cuts it). */
async function exit(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (s) => new Promise<void>((r) => (s.writableLength ? s.write('', () => r()) : r())),
    ),
  );
  process.exit(code);
}

run(process.argv.slice(2)).then(
  (code) => exit(code),
  (err: unknown) => {
    const { text, code } = errorText(err);
    process.stderr.write(text + '\n');
    return exit(code);
  },
);

/** `12 tasks, 30 events, 2 blobs` from a result's numeric fields (except those named). */
function counts(r: object, except: string[]): string {
  return (
    Object.entries(r)
      .filter(([k, v]) => typeof v === 'number' && !except.includes(k))
      .map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`)
      .join(', ') || 'nothing else'
  );
}
