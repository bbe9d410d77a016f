/** Plugins: the compliance table of the loaded job types (✅/❌ per contract element) and their parameters. */
import { useQuery } from '@tanstack/react-query';
import { api, toShownError } from '../api.ts';
import { fieldsOf, type JsonSchema } from '../schema-form.ts';
import { Link } from '../nav.tsx';
import { ErrorBox } from '../ui.tsx';

export function PluginsPage() {
  const compliance = useQuery({ queryKey: ['compliance'], queryFn: () => api.jobs.compliance.query() });
  const types = useQuery({ queryKey: ['types'], queryFn: () => api.jobs.types.query() });
  const error = compliance.error ?? types.error;
  const reports = compliance.data?.reports ?? [];
  const elements = compliance.data?.elements ?? [];
  const ok = reports.filter((r) => r.compliant).length;
  return (
    <>
      <section className="card" aria-labelledby="plugins-title">
        <h1 id="plugins-title">Plugins</h1>
        <ErrorBox error={error ? toShownError(error) : null} />
        {compliance.data ? (
          <p>
            {ok === reports.length ? '✅' : '⚠️'} {ok} of {reports.length} job types compliant
          </p>
        ) : null}
        <div className="table-wrap">
          <table className="compliance">
            <thead>
              <tr>
                <th scope="col">Job type</th>
                <th scope="col">Package</th>
                {elements.map((e) => (
                  <th scope="col" key={e} className="element">
                    <span>{e.replaceAll('_', ' ')}</span>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {reports.map((r) => {
                const missing = new Map(r.problems.map((p) => [p.element as string, p.message]));
                return (
                  <tr key={r.packageName} data-type={r.type ?? ''}>
                    <th scope="row">
                      <code>{r.type ?? '?'}</code>
                    </th>
                    <td>{r.packageName}</td>
                    {elements.map((e) => (
                      <td
                        key={e}
                        className="mark"
                        title={missing.get(e) ?? 'met'}
                        aria-label={`${e}: ${missing.has(e) ? `missing: ${missing.get(e)}` : 'met'}`}
                      >
                        {missing.has(e) ? '❌' : '✅'}
                      </td>
                    ))}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </section>
      {(types.data ?? []).map((t) => (
        <section className="card" key={t.type} aria-labelledby={`type-${t.type}`}>
          <div className="card-head">
            <h2 id={`type-${t.type}`}>
              <code>{t.type}</code> <span className="muted">v{t.version}</span>
            </h2>
            <Link className="button" href={`/submit?type=${encodeURIComponent(t.type)}`}>
              Submit {t.type}
            </Link>
          </div>
          <p>{t.description}</p>
          <p className="muted">Stages: {t.stages.join(' → ')}</p>
          <div className="table-wrap">
            <table className="params">
              <thead>
                <tr>
                  <th scope="col">Parameter</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Required</th>
                  <th scope="col">Default</th>
                  <th scope="col">Description</th>
                </tr>
              </thead>
              <tbody>
                {fieldsOf(t.parametersSchema as JsonSchema).map((f) => (
                  <tr key={f.name}>
                    <td>
                      <code>{f.name}</code>
                    </td>
                    <td>{f.kind === 'choice-or-value' ? f.hint : [f.kind, f.hint].filter(Boolean).join(', ')}</td>
                    <td>{f.required ? 'required' : ''}</td>
                    <td>{f.default === undefined ? '' : <code>{JSON.stringify(f.default)}</code>}</td>
                    <td>{f.description ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
