/**
 * One job: parameters, stages with live progress (`jobs.watch`), why it waits, tasks (pages,
 * status filter, error code and message), events (pages), result, cancel and retry.
 */
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, TASK_STATUSES, TERMINAL, toShownError, type Job, type ShownError, type TaskStatus } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate } from '../nav.tsx';
import { ConfirmButton, ErrorBox, Json, Pager, StageBar, Status, when } from '../ui.tsx';

const TASKS_PAGE = 50;
const EVENTS_PAGE = 25;

export function JobPage({ id }: { id: string }) {
  if (!/^[0-9a-f]{64}$/.test(id)) return <ResolvePrefix prefix={id} />;
  return <JobView id={id} />;
}

/** `/jobs/<prefix>`: opens the one job whose id starts with it, or says why not. */
function ResolvePrefix({ prefix }: { prefix: string }) {
  const valid = /^[0-9a-f]{8,63}$/.test(prefix);
  const found = useQuery({
    queryKey: ['findIds', prefix],
    queryFn: () => api.jobs.findIds.query({ prefix, limit: 10 }),
    enabled: valid,
  });
  useEffect(() => {
    if (found.data?.length === 1) navigate(`/jobs/${found.data[0]}`, { replace: true });
  }, [found.data]);
  return (
    <section className="card">
      <h1>Job {prefix}</h1>
      {!valid ? (
        <ErrorBox
          error={{
            code: 'CM_ERR_INVALID_ID',
            message: 'A job id (or a prefix of one) is at least 8 lower-case hex characters.',
            issues: [],
          }}
        />
      ) : null}
      <ErrorBox error={found.error ? toShownError(found.error) : null} />
      {found.data?.length === 0 ? <p>No job id starts with {prefix}.</p> : null}
      {found.data && found.data.length > 1 ? (
        <>
          <p>{prefix} is ambiguous: it starts these job ids.</p>
          <ul>
            {found.data.map((j) => (
              <li key={j}>
                <Link href={`/jobs/${j}`}>
                  <code>{j}</code>
                </Link>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

function JobView({ id }: { id: string }) {
  const [generation, setGeneration] = useState(0);
  const live = useLive<Job>(`${id}:${generation}`, (h) => api.jobs.watch.subscribe({ jobId: id, intervalMs: 300 }, h));
  // A plain query too: it reports a missing job (NOT_FOUND) that the stream cannot.
  const first = useQuery({
    queryKey: ['job', id, 'get', generation],
    queryFn: () => api.jobs.get.query({ jobId: id }),
    retry: false,
  });
  const job = live.data ?? first.data;
  const loadError = live.error ?? (first.error ? toShownError(first.error) : null);
  const qc = useQueryClient();
  const [actionError, setActionError] = useState<ShownError | null>(null);
  const act = useMutation({
    mutationFn: (what: 'cancel' | 'retry') =>
      what === 'cancel' ? api.jobs.cancel.mutate({ jobId: id }) : api.jobs.retry.mutate({ jobId: id }),
    onMutate: () => setActionError(null),
    onSuccess: () => {
      setGeneration((g) => g + 1);
      void qc.invalidateQueries({ queryKey: ['job', id] });
    },
    onError: (err) => setActionError(toShownError(err)),
  });

  if (!job)
    return (
      <section className="card">
        <h1>
          Job <code className="id">{id}</code>
        </h1>
        {loadError ? <ErrorBox error={loadError} /> : <p className="muted">Loading…</p>}
      </section>
    );

  const terminal = TERMINAL.includes(job.status);
  return (
    <>
      <section className="card" aria-labelledby="job-title">
        <div className="card-head">
          <h1 id="job-title">
            {job.type} <Status status={job.status} />
          </h1>
          <div className="actions">
            {!terminal ? (
              <ConfirmButton
                label="Cancel"
                danger
                question="Cancel this job? Queued tasks will not run."
                disabled={act.isPending}
                onConfirm={() => act.mutate('cancel')}
              />
            ) : null}
            {job.status === 'failed' || job.status === 'cancelled' ? (
              <ConfirmButton
                label="Retry"
                question="Run the failed and cancelled tasks of the current stage again?"
                disabled={act.isPending}
                onConfirm={() => act.mutate('retry')}
              />
            ) : null}
          </div>
        </div>
        <p className="id-line">
          <code className="id" aria-label="Job id">
            {job.id}
          </code>
        </p>
        <ErrorBox error={actionError} />
        {live.error ? <ErrorBox error={live.error} title="Live updates stopped:" /> : null}
        {job.error ? (
          <div className="error job-error" role="alert" aria-label="Job error">
            <strong>Failed{job.error.stage ? ` in stage ${job.error.stage}` : ''}: </strong>
            <code className="error-code">{job.error.code}</code>{' '}
            <span className="error-message">{job.error.message}</span>
          </div>
        ) : null}
        <dl className="facts">
          <dt>Version</dt>
          <dd>{job.pluginVersion}</dd>
          <dt>Stage</dt>
          <dd>
            {job.currentStage} of {job.totalStages}
          </dd>
          <dt>Created</dt>
          <dd>{when(job.createdAt)}</dd>
          <dt>Started</dt>
          <dd>{when(job.startedAt)}</dd>
          <dt>Finished</dt>
          <dd>{when(job.completedAt)}</dd>
        </dl>
        <h2>Stages</h2>
        <div className="stages" aria-label="Stages">
          {job.stages.map((s) => (
            <div key={s.index}>
              <StageBar stage={s} />
              {s.waiting && !terminal ? <StageWaiting stage={s.name} waiting={s.waiting} /> : null}
            </div>
          ))}
        </div>
        {!terminal ? <Waiting job={job} /> : null}
      </section>
      <div className="two-col">
        <section className="card" aria-labelledby="params-title">
          <h2 id="params-title">Parameters</h2>
          <Json value={job.parameters} label="Parameters" />
        </section>
        <section className="card" aria-labelledby="result-title">
          <h2 id="result-title">Result</h2>
          <Json value={job.result} label="Result" />
        </section>
      </div>
      <Tasks job={job} />
      <Events job={job} />
    </>
  );
}

type Waits = NonNullable<Job['stages'][number]['waiting']>;

/** In how long an instant is, in words ("in 59 min", "in 12 s", "now"). */
function fromNow(iso: string, now = Date.now()): string {
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  if (s <= 0) return 'now';
  if (s < 90) return `in ${s} s`;
  if (s < 90 * 60) return `in ${Math.round(s / 60)} min`;
  return `in ${Math.round(s / 3600)} h`;
}

/** What the running stage's tasks wait for, as the engine tells it (`jobs.get` → stage.waiting). */
function StageWaiting({ stage, waiting: w }: { stage: string; waiting: Waits }) {
  return (
    <ul className="stage-waiting" aria-label={`What ${stage} waits for`}>
      {w.running.map((r) => (
        <li key={r.workerId ?? '?'} data-wait="running">
          {r.tasks} task(s) running on <code>{r.workerId ?? 'an unknown worker'}</code>
          {r.workerLive ? (
            ' (live)'
          ) : (
            <strong> — that worker is not live: its lease will lapse and the task run again</strong>
          )}
          {r.lastHeartbeatAt ? <>, last heartbeat {when(r.lastHeartbeatAt)}</> : null}
        </li>
      ))}
      {w.forWorkerSlot > 0 ? (
        <li data-wait="slot">{w.forWorkerSlot} task(s) queued, waiting for a free worker slot</li>
      ) : null}
      {w.noLiveWorker ? (
        <li data-wait="no-worker">
          <strong>No live worker serves this job type:</strong> its queued tasks wait until one starts
        </li>
      ) : null}
      {w.retryScheduled > 0 && w.nextRetryAt ? (
        <li data-wait="retry">
          {w.retryScheduled} task(s) retrying; the next retry is due{' '}
          <time dateTime={w.nextRetryAt} title={w.nextRetryAt}>
            {when(w.nextRetryAt)}
          </time>{' '}
          ({fromNow(w.nextRetryAt)})
        </li>
      ) : null}
      {!w.running.length && !w.forWorkerSlot && !w.noLiveWorker && !w.retryScheduled ? (
        <li data-wait="settled">{w.summary}</li>
      ) : null}
    </ul>
  );
}

/** Why a job is not moving: its queued and retrying tasks, and whether any worker is running. */
function Waiting({ job }: { job: Job }) {
  const queued = useQuery({
    queryKey: ['job', job.id, 'queued', job.updatedAt],
    queryFn: () => api.jobs.tasks.query({ jobId: job.id, stage: job.currentStage || 1, status: 'queued', limit: 200 }),
    placeholderData: keepPreviousData,
  });
  const health = useQuery({ queryKey: ['health'], queryFn: () => api.health.query(), refetchInterval: 10_000 });
  const tasks = queued.data?.items ?? [];
  const retrying = tasks.filter((t) => t.attempts > 0);
  const lines: string[] = [];
  if (health.data && health.data.workers === 0) lines.push('No worker is running: start one to process this job.');
  if (job.status === 'queued') lines.push('The job is queued: the first stage has not been planned yet.');
  const fresh = tasks.length - retrying.length;
  if (fresh > 0)
    lines.push(
      `${fresh}${queued.data?.nextCursor ? '+' : ''} task(s) of stage ${job.currentStage} waiting for a worker.`,
    );
  for (const t of retrying.slice(0, 5))
    lines.push(
      `Task ${t.key} is retrying: attempt ${t.attempts} of ${t.maxAttempts} failed${t.error ? ` with ${t.error.code}: ${t.error.message}` : ''}.`,
    );
  if (retrying.length > 5) lines.push(`… and ${retrying.length - 5} more retrying task(s).`);
  if (!lines.length) return null;
  return (
    <div className="waiting" aria-label="Why it is waiting">
      <h3>Waiting</h3>
      <ul>
        {lines.map((l) => (
          <li key={l}>{l}</li>
        ))}
      </ul>
    </div>
  );
}

function Tasks({ job }: { job: Job }) {
  const [status, setStatus] = useState<TaskStatus | ''>('');
  const [stage, setStage] = useState<number | ''>('');
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const input = {
    jobId: job.id,
    limit: TASKS_PAGE,
    cursor,
    ...(status ? { status } : {}),
    ...(stage ? { stage } : {}),
  };
  const tasks = useQuery({
    queryKey: ['job', job.id, 'tasks', input, job.updatedAt],
    queryFn: () => api.jobs.tasks.query(input),
    placeholderData: keepPreviousData,
  });
  return (
    <section className="card" aria-labelledby="tasks-title">
      <h2 id="tasks-title">Tasks</h2>
      <div className="filters">
        <label>
          Task status
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value as TaskStatus | '');
              setCursors([]);
            }}
          >
            <option value="">all</option>
            {TASK_STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Stage
          <select
            value={stage}
            onChange={(e) => {
              setStage(e.target.value ? Number(e.target.value) : '');
              setCursors([]);
            }}
          >
            <option value="">all</option>
            {job.stages.map((s) => (
              <option key={s.index} value={s.index}>
                {s.index}. {s.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={tasks.error ? toShownError(tasks.error) : null} />
      {tasks.data && !tasks.data.items.length ? <p className="muted">No tasks match.</p> : null}
      {tasks.data?.items.length ? (
        <div className="table-wrap">
          <table className="tasks">
            <thead>
              <tr>
                <th scope="col">Stage</th>
                <th scope="col">Key</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {tasks.data.items.map((t) => (
                <tr key={t.id} data-task-key={t.key}>
                  <td>{t.stageName}</td>
                  <td>
                    <code>{t.key}</code>
                  </td>
                  <td>
                    <Status status={t.status} />
                    {t.progress !== null && t.status === 'processing' ? ` ${Math.round(t.progress * 100)}%` : ''}
                  </td>
                  <td>
                    {t.attempts}/{t.maxAttempts}
                  </td>
                  <td className="task-error">
                    {t.error ? (
                      <>
                        <code className="error-code">{t.error.code}</code>{' '}
                        <span className="error-message">{t.error.message}</span>
                      </>
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <Pager
        label="Task pages"
        hasPrev={cursors.length > 0}
        hasNext={!!tasks.data?.nextCursor}
        onPrev={() => setCursors((c) => c.slice(0, -1))}
        onNext={() => tasks.data?.nextCursor && setCursors((c) => [...c, tasks.data!.nextCursor!])}
      />
    </section>
  );
}

function Events({ job }: { job: Job }) {
  const [afters, setAfters] = useState<number[]>([]);
  const afterId = afters[afters.length - 1] ?? 0;
  const events = useQuery({
    queryKey: ['job', job.id, 'events', afterId, job.updatedAt],
    queryFn: () => api.jobs.events.query({ jobId: job.id, afterId, limit: EVENTS_PAGE + 1 }),
    placeholderData: keepPreviousData,
  });
  const items = (events.data ?? []).slice(0, EVENTS_PAGE);
  const more = (events.data?.length ?? 0) > EVENTS_PAGE;
  return (
    <section className="card" aria-labelledby="events-title">
      <h2 id="events-title">Events</h2>
      <ErrorBox error={events.error ? toShownError(events.error) : null} />
      <ol className="events" aria-label="Events">
        {items.map((e) => (
          <li key={e.id} data-event={e.kind}>
            <span className="nowrap muted">{when(e.at)}</span> <strong>{e.kind.replaceAll('_', ' ')}</strong>
            {e.stage ? ` · stage ${e.stage}` : ''}
            {e.message ? <span className="event-message"> — {e.message}</span> : null}
          </li>
        ))}
      </ol>
      <nav className="pager" aria-label="Event pages">
        <button type="button" disabled={!afters.length} onClick={() => setAfters((a) => a.slice(0, -1))}>
          ← Earlier
        </button>
        <button type="button" disabled={!more} onClick={() => setAfters((a) => [...a, items[items.length - 1]!.id])}>
          Later →
        </button>
      </nav>
    </section>
  );
}
