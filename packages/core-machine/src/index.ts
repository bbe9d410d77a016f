export * from './define-job.ts';
export * from './errors.ts';
export * from './compliance.ts';
export * from './discover.ts';
export * from './views.ts';
export {
  CoreMachine,
  zodIssues,
  type CreateMachineOptions,
  type ListJobsFilter,
  type ListTasksFilter,
  type LiveWorker,
} from './machine.ts';
export { sweepDeadTempDirs, TASK_TMP_ROOT, type StopOptions, type Worker, type WorkerOptions } from './worker.ts';
export { configFromEnv, DEFAULT_CONFIG, type MachineConfig } from './config.ts';
export { createPool, isTransientDbError, quoteIdent, quoteLiteral, withTransaction, type Pool } from './db.ts';
export { migrate, loadMigrations, type Migration } from './migrate.ts';
export { canonicalJson, defaultJobId, taskId, sha256Hex } from './job-id.ts';
export { createLogger } from './logger.ts';
export {
  createPinoLogger,
  normalizeFields,
  withFields,
  type LogLevel,
  type LogOptions,
  type StructuredLogger,
} from './log.ts';
export { EngineMetrics, metrics } from './metrics.ts';
export { withActor, type Actor } from './actor.ts';
export { listRuns, rerunJob, runEvents, runsTable, type JobRun } from './rerun.ts';
export {
  deleteJob,
  parseDuration,
  purgeJobs,
  type PurgedJob,
  type PurgeHook,
  type PurgeOptions,
  type PurgeResult,
} from './retention.ts';
export { findPluginPackages, renderPluginTypes, type PluginPackage } from './plugin-registry.ts';
