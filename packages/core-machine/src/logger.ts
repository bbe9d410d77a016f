import { createPinoLogger, type LogLevel, type StructuredLogger } from './log.ts';

export type { LogLevel } from './log.ts';

/** One JSON line per entry on stderr (pino, see log.ts); `fields` are merged into the line. */
export function createLogger(level: LogLevel = 'info', base: Record<string, unknown> = {}): StructuredLogger {
  return createPinoLogger(level, base);
}
