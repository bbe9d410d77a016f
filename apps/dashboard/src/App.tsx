import { useQueryClient, useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, getToken, setToken } from './api.ts';
import { Link, useLocation } from './nav.tsx';
import { CatalogPage } from './pages/Catalog.tsx';
import { JobPage } from './pages/Job.tsx';
import { JobsPage } from './pages/Jobs.tsx';
import { PluginsPage } from './pages/Plugins.tsx';
import { SubmitPage } from './pages/Submit.tsx';

const NAV = [
  ['/jobs', 'Jobs'],
  ['/submit', 'Submit'],
  ['/plugins', 'Plugins'],
  ['/catalog', 'Catalog'],
] as const;

export function App() {
  const { path } = useLocation();
  const health = useQuery({ queryKey: ['health'], queryFn: () => api.health.query(), refetchInterval: 10_000 });
  const section = path === '/' ? '/jobs' : `/${path.split('/')[1] ?? ''}`;
  const jobId = /^\/jobs\/([^/]+)$/.exec(path)?.[1];
  return (
    <>
      <header className="top">
        <Link href="/jobs" className="brand">
          CoreMachine
        </Link>
        <nav aria-label="Sections">
          {NAV.map(([href, label]) => (
            <Link key={href} href={href} aria-current={section === href ? 'page' : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <TokenControl />
        <span className="health" aria-label="Health" aria-live="polite">
          {health.data
            ? `${health.data.status} · v${health.data.version} · ${health.data.workers} worker(s)`
            : health.error
              ? 'API unreachable'
              : '…'}
        </span>
      </header>
      <main>
        {jobId ? (
          <JobPage key={jobId} id={decodeURIComponent(jobId)} />
        ) : section === '/jobs' ? (
          <JobsPage />
        ) : section === '/submit' ? (
          <SubmitPage />
        ) : section === '/plugins' ? (
          <PluginsPage />
        ) : section === '/catalog' ? (
          <CatalogPage />
        ) : (
          <section className="card">
            <h1>Not found</h1>
            <p>
              No page at <code>{path}</code>. <Link href="/jobs">See the jobs</Link>.
            </p>
          </section>
        )}
      </main>
    </>
  );
}

/** Signs this browser in with an API token (needed when the server has tokens), or out. */
function TokenControl() {
  const qc = useQueryClient();
  const [open, setOpen] = useState(false);
  const [value, setValue] = useState('');
  const [signedIn, setSignedIn] = useState(() => !!getToken());
  const apply = (token: string | null) => {
    setToken(token);
    setSignedIn(!!token);
    setOpen(false);
    setValue('');
    void qc.invalidateQueries();
    // Live streams carry the token in their URL: reopen them.
    location.reload();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) apply(value.trim());
  };
  if (open)
    return (
      <form className="token-form" onSubmit={submit}>
        <label>
          API token
          <input type="password" value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" />
        </label>
        <button type="submit">Sign in</button>
        <button type="button" onClick={() => setOpen(false)}>
          Close
        </button>
      </form>
    );
  return signedIn ? (
    <button type="button" className="token-button" onClick={() => apply(null)}>
      Sign out
    </button>
  ) : (
    <button type="button" className="token-button" onClick={() => setOpen(true)}>
      API token
    </button>
  );
}
