/**
 * `cm`: the CoreMachine command line (`pnpm cm <command>`).
 *
 *   cm submit <type> --params '<json>' [--wait] [--json]
 *   cm get <id> [--json]     cm list [--status s] [--type t] [--limit n] [--json]
 *   cm tasks <id> [--stage n] [--status s] [--json]    cm events <id> [--json]
 *   cm cancel <id>    cm retry <id>    cm types [--json]    cm compliance [--json]
 *   cm blob put|ls|get ...
 *
 * Talks to the API at --url or CM_URL (default http://127.0.0.1:3000); `compliance` checks the
 * installed plugins locally. Exit codes: 0 ok, 1 job not completed or API error, 2 usage.
 */
import { parseArgs } from 'node:util';
import { discoverPlugins, formatComplianceTable, TERMINAL_JOB_STATUSES, type JobView } from '@coremachine/core-machine';
import { TRPCClientError } from '@trpc/client';
import { APP_PACKAGE_JSON } from '../app.ts';
import { parseEnv } from '../env.ts';
import { apiClient, type Api } from './api.ts';
import { eventRow, jobSummary, progressBar, status, table, taskRow } from './render.ts';

const USAGE = `usage: cm <command> [options]
  submit <type> --params '<json>' [--wait] [--json]   submit a job (exit 0 when it completes with --wait)
  get <id> [--json]                                    show a job
  list [--status s] [--type t] [--limit n] [--json]    list jobs, newest first
  tasks <id> [--stage n] [--status s] [--json]         list a job's tasks
  events <id> [--json]                                 a job's timeline
  cancel <id> | retry <id>                             cancel a running job / re-run a failed one
  types [--json]                                       job types and their parameters
  compliance [--json]                                  plugin compliance table (local check)
  blob put <container> <file-or-dir> [--prefix p] | blob ls <container> [--prefix p] | blob get <container> <blob> <file>
options: --url <api url> (default $CM_URL or http://127.0.0.1:3000)`;

const out = (s: string) => process.stdout.write(s + '\n');
let apiUrl = '';

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    out(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'blob') {
    const blobModule = './blob.ts';
    const { blobCommand } = (await import(blobModule)) as { blobCommand: (a: string[]) => Promise<number> };
    return blobCommand(rest);
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
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
    },
  });
  const env = parseEnv();
  apiUrl = values.url ?? env.CM_URL;
  const api = apiClient(apiUrl);
  const print = (data: unknown, human: () => string) => out(values.json ? JSON.stringify(data, null, 2) : human());
  const need = (i: number, what: string) => {
    const v = positionals[i];
    if (!v) throw new UsageError(`missing ${what}`);
    return v;
  };

  switch (command) {
    case 'submit': {
      const type = need(0, '<type>');
      let params: unknown = {};
      if (values.params) {
        try {
          params = JSON.parse(values.params);
        } catch (err) {
          throw new UsageError(`--params is not valid JSON: ${(err as Error).message}`);
        }
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
      const job = await api.jobs.get.query({ jobId: need(0, '<id>') });
      print(job, () => jobSummary(job));
      return 0;
    }
    case 'list': {
      const page = await api.jobs.list.query({
        ...(values.status ? { status: values.status as never } : {}),
        ...(values.type ? { type: values.type } : {}),
        limit: values.limit ? Number(values.limit) : 20,
        cursor: values.cursor ?? null,
      });
      print(
        page,
        () =>
          table([
            ['ID', 'TYPE', 'STATUS', 'STAGE', 'CREATED'],
            ...page.items.map((j) => [
              j.id.slice(0, 16),
              j.type,
              status(j.status),
              `${j.currentStage}/${j.totalStages}`,
              j.createdAt,
            ]),
          ]) + (page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : ''),
      );
      return 0;
    }
    case 'tasks': {
      const page = await api.jobs.tasks.query({
        jobId: need(0, '<id>'),
        ...(values.stage ? { stage: Number(values.stage) } : {}),
        ...(values.status ? { status: values.status as never } : {}),
        limit: values.limit ? Number(values.limit) : 100,
        cursor: values.cursor ?? null,
      });
      print(
        page,
        () =>
          table([['STAGE', 'KEY', 'STATUS', 'ATTEMPTS', 'ERROR'], ...page.items.map(taskRow)]) +
          (page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : ''),
      );
      return 0;
    }
    case 'events': {
      const events = await api.jobs.events.query({ jobId: need(0, '<id>') });
      print(events, () => table([['AT', 'EVENT', 'STAGE', 'MESSAGE'], ...events.map(eventRow)]));
      return 0;
    }
    case 'cancel':
    case 'retry': {
      const jobId = need(0, '<id>');
      const job =
        command === 'cancel' ? await api.jobs.cancel.mutate({ jobId }) : await api.jobs.retry.mutate({ jobId });
      print(job, () => jobSummary(job));
      return 0;
    }
    case 'types': {
      const types = await api.jobs.types.query();
      print(types, () =>
        types
          .map(
            (t) =>
              `${t.type} (v${t.version}): ${t.description}\n  stages: ${t.stages.join(' → ')}\n  parameters: ${JSON.stringify((t.parametersSchema as { properties?: unknown }).properties ?? {})}`,
          )
          .join('\n\n'),
      );
      return 0;
    }
    case 'compliance': {
      const { reports } = await discoverPlugins(env.CM_PLUGINS_FROM ?? APP_PACKAGE_JSON);
      const { checkUniqueTypes } = await import('@coremachine/core-machine');
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
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

/** Follows a job through the SSE subscription, drawing one progress bar per stage. */
function follow(api: Api, jobId: string, draw: boolean): Promise<JobView> {
  return new Promise((resolve, reject) => {
    let drawn = 0;
    const tty = process.stdout.isTTY;
    const sub = api.jobs.watch.subscribe(
      { jobId },
      {
        onData: (data) => {
          const job = ((data as { data?: JobView }).data ?? data) as JobView;
          if (draw) {
            const lines = job.stages.filter((s) => s.status !== 'pending').map((s) => '  ' + progressBar(s));
            if (tty && drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
            if (tty || TERMINAL_JOB_STATUSES.includes(job.status)) {
              process.stdout.write(lines.join('\n') + '\n');
              drawn = lines.length;
            }
          }
          if (TERMINAL_JOB_STATUSES.includes(job.status)) {
            sub.unsubscribe();
            if (draw && tty) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
            resolve(job);
          }
        },
        onError: (err) => {
          sub.unsubscribe();
          reject(err);
        },
      },
    );
  });
}

class UsageError extends Error {}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`cm: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    if (err instanceof TRPCClientError && !err.data) {
      process.stderr.write(
        `cm: cannot reach the CoreMachine API at ${apiUrl}: ${err.message}. Start it with \`make start\` or pass --url.\n`,
      );
      process.exit(1);
    }
    if (err instanceof TRPCClientError) {
      const issues = (err.data as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues ?? [];
      process.stderr.write(
        `cm: ${err.data?.code ?? 'ERROR'}: ${err.message}\n${issues.map((i) => `  ${i.path}: ${i.message}\n`).join('')}`,
      );
      process.exit(1);
    }
    process.stderr.write(`cm: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
