/** Small shared pieces: status badge, stage bar, error box, pager, confirmation. */
import { useState, type ReactNode } from 'react';
import type { ShownError } from './api.ts';

export function Status({ status }: { status: string }) {
  return <span className={`status status-${status}`}>{status.replaceAll('_', ' ')}</span>;
}

export function StageBar({
  stage,
}: {
  stage: { name: string; status: string; total: number; completed: number; failed: number };
}) {
  const total = Math.max(stage.total, 1);
  const label = `${stage.name}: ${stage.completed} of ${stage.total} completed${stage.failed ? `, ${stage.failed} failed` : ''}`;
  return (
    <div className="stage" data-stage={stage.name}>
      <span className="stage-name">{stage.name}</span>
      <span
        className="bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={stage.total}
        aria-valuenow={stage.completed}
      >
        <i className="bar-done" style={{ width: `${(100 * stage.completed) / total}%` }} />
        <i className="bar-failed" style={{ width: `${(100 * stage.failed) / total}%` }} />
      </span>
      <span className="stage-count">
        {stage.completed}/{stage.total}
        {stage.failed ? ` (${stage.failed} failed)` : ''}
      </span>
      <Status status={stage.status} />
    </div>
  );
}

export function ErrorBox({ error, title }: { error: ShownError | null | undefined; title?: string }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      {title ? <strong>{title} </strong> : null}
      <code className="error-code">{error.code}</code> <span className="error-message">{error.message}</span>
    </div>
  );
}

export function Pager({
  hasPrev,
  hasNext,
  onPrev,
  onNext,
  label,
}: {
  hasPrev: boolean;
  hasNext: boolean;
  onPrev: () => void;
  onNext: () => void;
  label: string;
}) {
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={!hasPrev} onClick={onPrev}>
        ← Newer
      </button>
      <button type="button" disabled={!hasNext} onClick={onNext}>
        Older →
      </button>
    </nav>
  );
}

/** A button that asks before it acts; the question and the two answers are plain buttons. */
export function ConfirmButton({
  label,
  question,
  onConfirm,
  disabled,
  danger,
}: {
  label: string;
  question: ReactNode;
  onConfirm: () => void;
  disabled?: boolean;
  danger?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <button type="button" className={danger ? 'danger' : ''} disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  return (
    <span className="confirm" role="group" aria-label={`Confirm ${label.toLowerCase()}`}>
      <span>{question}</span>
      <button
        type="button"
        className={danger ? 'danger' : 'primary'}
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        Yes, {label.toLowerCase()}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        No
      </button>
    </span>
  );
}

export const shortId = (id: string) => id.slice(0, 12);

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {value === null || value === undefined ? '—' : JSON.stringify(value, null, 2)}
    </pre>
  );
}
