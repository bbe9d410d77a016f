/** Jobs: the live list (newest first, cursor pages), filters, and search by id prefix. */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, JOB_STATUSES, toShownError, type Job, type JobStatus, type Outputs, type ShownError } from '../api.ts';
import { useLive } from '../live.ts';
import { Link, navigate, useLocation } from '../nav.tsx';
import { ErrorBox, Pager, shortId, StageBar, Status, when } from '../ui.tsx';

const PAGE_SIZE = 25;
type Page = Outputs['jobs']['list'];

export function JobsPage() {
  const { query } = useLocation();
  const status = (query.get('status') ?? '') as JobStatus | '';
  const type = query.get('type') ?? '';
  const after = query.get('after') ?? '';
  const before = query.get('before') ?? '';
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const types = useQuery({ queryKey: ['types'], queryFn: () => api.jobs.types.query() });

  const setFilter = (name: string, value: string) => {
    const q = new URLSearchParams(query);
    if (value) q.set(name, value);
    else q.delete(name);
    setCursors([]);
    navigate(`/jobs${q.size ? `?${q}` : ''}`, { replace: true });
  };

  const input = {
    limit: PAGE_SIZE,
    cursor,
    ...(status ? { status } : {}),
    ...(type ? { type } : {}),
    ...(after ? { createdAfter: new Date(after).toISOString() } : {}),
    ...(before ? { createdBefore: new Date(before).toISOString() } : {}),
  };
  const live = useLive<Page>(JSON.stringify(input), (h) =>
    api.jobs.watchList.subscribe({ ...input, intervalMs: 1000 }, h),
  );

  return (
    <section className="card" aria-labelledby="jobs-title">
      <div className="card-head">
        <h1 id="jobs-title">Jobs</h1>
        <Link href="/submit" className="button primary">
          Submit a job
        </Link>
      </div>
      <div className="filters">
        <label>
          Type
          <select value={type} onChange={(e) => setFilter('type', e.target.value)}>
            <option value="">all</option>
            {(types.data ?? []).map((t) => (
              <option key={t.type}>{t.type}</option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setFilter('status', e.target.value)}>
            <option value="">all</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replaceAll('_', ' ')}
              </option>
            ))}
          </select>
        </label>
        <label>
          Created after
          <input type="datetime-local" value={after} onChange={(e) => setFilter('after', e.target.value)} />
        </label>
        <label>
          Created before
          <input type="datetime-local" value={before} onChange={(e) => setFilter('before', e.target.value)} />
        </label>
        <IdSearch />
      </div>
      {/* A refused stream says little (EventSource has no status): the plain query's error first. */}
      <ErrorBox error={(types.error ? toShownError(types.error) : null) ?? live.error} />
      {live.data ? <JobTable jobs={live.data.items} /> : live.error ? null : <p className="muted">Loading…</p>}
      <Pager
        label="Job pages"
        hasPrev={cursors.length > 0}
        hasNext={!!live.data?.nextCursor}
        onPrev={() => setCursors((c) => c.slice(0, -1))}
        onNext={() => live.data?.nextCursor && setCursors((c) => [...c, live.data!.nextCursor!])}
      />
    </section>
  );
}

function JobTable({ jobs }: { jobs: Job[] }) {
  if (!jobs.length) return <p className="muted">No jobs match.</p>;
  return (
    <div className="table-wrap">
      <table className="jobs">
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Stages</th>
            <th scope="col" className="wide-only">
              Created
            </th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-job-id={j.id}>
              <td>
                <Link href={`/jobs/${j.id}`} aria-label={`Job ${j.id}`}>
                  <code>{shortId(j.id)}</code>
                </Link>
              </td>
              <td>{j.type}</td>
              <td>
                <Status status={j.status} />
              </td>
              <td className="stages-cell">
                {j.stages.map((s) => (
                  <StageBar key={s.index} stage={s} />
                ))}
              </td>
              <td className="wide-only nowrap">{when(j.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Finds jobs by the first characters of their id; one match opens it. */
function IdSearch() {
  const [prefix, setPrefix] = useState('');
  const [matches, setMatches] = useState<string[] | null>(null);
  const [error, setError] = useState<ShownError | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const p = prefix.trim().toLowerCase();
    setError(null);
    setMatches(null);
    if (!p) return;
    api.jobs.findIds.query({ prefix: p, limit: 10 }).then(
      (ids) => {
        if (ids.length === 1) navigate(`/jobs/${ids[0]}`);
        else setMatches(ids);
      },
      (err: unknown) => setError(toShownError(err)),
    );
  };
  return (
    <form className="search" role="search" onSubmit={submit}>
      <label>
        Job id
        <input
          value={prefix}
          onChange={(e) => setPrefix(e.target.value)}
          placeholder="id prefix"
          spellCheck={false}
          autoComplete="off"
        />
      </label>
      <button type="submit">Find</button>
      <ErrorBox error={error} />
      {matches && !matches.length ? <p className="muted">No job id starts with {prefix.trim()}.</p> : null}
      {matches && matches.length > 1 ? (
        <ul className="matches" aria-label="Matching jobs">
          {matches.map((id) => (
            <li key={id}>
              <Link href={`/jobs/${id}`}>
                <code>{id}</code>
              </Link>
            </li>
          ))}
        </ul>
      ) : null}
    </form>
  );
}
