/**
 * Submit: a form generated from the chosen type's parameters JSON Schema. Defaults are filled
 * in, required fields marked, descriptions shown; the API validates and its messages appear
 * beside the fields they name. An existing job (same id) is reported and opened.
 */
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState, type FormEvent } from 'react';
import { api, toShownError, type JobType, type ShownError } from '../api.ts';
import { navigate, useLocation } from '../nav.tsx';
import {
  fieldsOf,
  initialValues,
  issuesByField,
  toParams,
  type Field,
  type FormValues,
  type JsonSchema,
} from '../schema-form.ts';
import { ErrorBox } from '../ui.tsx';

export function SubmitPage() {
  const { query } = useLocation();
  const types = useQuery({ queryKey: ['types'], queryFn: () => api.jobs.types.query() });
  const chosen = query.get('type') ?? '';
  const type = types.data?.find((t) => t.type === chosen) ?? types.data?.[0];
  return (
    <section className="card" aria-labelledby="submit-title">
      <h1 id="submit-title">Submit a job</h1>
      <ErrorBox error={types.error ? toShownError(types.error) : null} />
      {types.data ? (
        <label className="field">
          <span className="label">Job type</span>
          <select
            value={type?.type ?? ''}
            onChange={(e) => navigate(`/submit?type=${encodeURIComponent(e.target.value)}`, { replace: true })}
          >
            {types.data.map((t) => (
              <option key={t.type}>{t.type}</option>
            ))}
          </select>
        </label>
      ) : null}
      {type ? <JobForm key={type.type} type={type} /> : null}
    </section>
  );
}

function JobForm({ type }: { type: JobType }) {
  const fields = useMemo(() => fieldsOf(type.parametersSchema as JsonSchema), [type]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields));
  const [fieldErrors, setFieldErrors] = useState<Record<string, string[]>>({});
  const [error, setError] = useState<ShownError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setNotice(null);
    const { params, errors } = toParams(fields, values);
    if (Object.keys(errors).length) {
      setFieldErrors(Object.fromEntries(Object.entries(errors).map(([k, v]) => [k, [v]])));
      return;
    }
    setFieldErrors({});
    setBusy(true);
    api.jobs.submit.mutate({ type: type.type, params } as never).then(
      (r) => {
        setBusy(false);
        if (r.idempotent) {
          setNotice(`Already submitted: job ${r.jobId.slice(0, 12)} is ${r.status.replaceAll('_', ' ')}. Opening it…`);
          setTimeout(() => navigate(`/jobs/${r.jobId}`), 1200);
        } else navigate(`/jobs/${r.jobId}`);
      },
      (err: unknown) => {
        setBusy(false);
        const shown = toShownError(err);
        const byField = issuesByField(fields, shown.issues);
        setFieldErrors(byField);
        setError(shown);
      },
    );
  };

  return (
    <form className="job-form" onSubmit={submit} noValidate aria-label={`${type.type} parameters`}>
      <p className="muted">
        {type.description}{' '}
        <span className="nowrap">
          (v{type.version}; stages: {type.stages.join(' → ')})
        </span>
      </p>
      {fields.map((f) => (
        <FieldInput
          key={f.name}
          field={f}
          value={values[f.name] ?? ''}
          errors={fieldErrors[f.name]}
          onChange={(v) => setValues((s) => ({ ...s, [f.name]: v }))}
        />
      ))}
      {fieldErrors['']?.map((m) => (
        <p key={m} className="field-error" role="alert">
          {m}
        </p>
      ))}
      <ErrorBox error={error} />
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Submitting…' : 'Submit'}
        </button>
        <span className="muted">
          <span className="required-mark" aria-hidden="true">
            *
          </span>{' '}
          required
        </span>
      </div>
    </form>
  );
}

function FieldInput({
  field,
  value,
  errors,
  onChange,
}: {
  field: Field;
  value: string;
  errors: string[] | undefined;
  onChange: (v: string) => void;
}) {
  const id = `field-${field.name}`;
  const describedBy = [field.description || field.hint ? `${id}-help` : '', errors?.length ? `${id}-error` : '']
    .filter(Boolean)
    .join(' ');
  const common = {
    id,
    name: field.name,
    'aria-invalid': errors?.length ? true : undefined,
    'aria-describedby': describedBy || undefined,
    'aria-required': field.required || undefined,
  };
  let input;
  switch (field.kind) {
    case 'select':
      input = (
        <select {...common} value={value} onChange={(e) => onChange(e.target.value)}>
          {field.default === undefined ? <option value="">(not set)</option> : null}
          {field.options.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
      );
      break;
    case 'boolean':
      input = (
        <select {...common} value={value} onChange={(e) => onChange(e.target.value)}>
          {field.default === undefined ? <option value="">(not set)</option> : null}
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      );
      break;
    case 'json':
      input = (
        <textarea {...common} value={value} rows={3} spellCheck={false} onChange={(e) => onChange(e.target.value)} />
      );
      break;
    case 'integer':
    case 'number':
      input = <input {...common} inputMode="decimal" value={value} onChange={(e) => onChange(e.target.value)} />;
      break;
    default:
      input = (
        <input
          {...common}
          value={value}
          list={field.options.length ? `${id}-options` : undefined}
          onChange={(e) => onChange(e.target.value)}
        />
      );
  }
  return (
    <div className={`field${errors?.length ? ' invalid' : ''}`} data-field={field.name}>
      <label htmlFor={id} className="label">
        {field.name}
        {field.required ? (
          <span className="required-mark" title="required">
            {' '}
            *
          </span>
        ) : null}
        <span className="kind"> {field.kind === 'choice-or-value' ? '' : field.kind}</span>
      </label>
      {input}
      {field.options.length && field.kind === 'choice-or-value' ? (
        <datalist id={`${id}-options`}>
          {field.options.map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      ) : null}
      {field.description || field.hint ? (
        <small id={`${id}-help`} className="help">
          {[field.description, field.hint].filter(Boolean).join(' — ')}
          {field.default !== undefined ? ` (default ${JSON.stringify(field.default)})` : ''}
        </small>
      ) : field.default !== undefined ? (
        <small className="help">default {JSON.stringify(field.default)}</small>
      ) : null}
      {errors?.length ? (
        <span id={`${id}-error`} className="field-error" role="alert">
          {field.name} {errors.join('; ')}
        </span>
      ) : null}
    </div>
  );
}
