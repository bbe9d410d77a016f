import type { Logger } from './define-job.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** One JSON line per entry on stderr; `fields` are merged into the line. */
export function createLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
): Logger & { child(fields: Record<string, unknown>): Logger } {
  const emit = (lvl: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < ORDER[level]) return;
    process.stderr.write(
      JSON.stringify({ t: new Date().toISOString(), level: lvl, msg: message, ...base, ...fields }) + '\n',
    );
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }),
  };
}
