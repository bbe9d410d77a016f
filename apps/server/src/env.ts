/**
 * Configuration, parsed once from the environment. Nothing else reads process.env.
 * Every setting has an embedded default so `make start` works on a fresh machine.
 */
import { z } from 'zod';

const bool = z.preprocess(
  (v) => (typeof v === 'string' ? ['1', 'true', 'yes', 'on'].includes(v.toLowerCase()) : v),
  z.boolean(),
);

const list = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

export const envSchema = z.object({
  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/coremachine'),
  CM_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default('coremachine'),
  CM_API_HOST: z.string().default('127.0.0.1'),
  CM_API_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  CM_ROLE: z.enum(['api', 'worker', 'all']).default('all'),
  CM_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  CM_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).optional(),
  CM_RETRY_BASE_DELAY_MS: z.coerce.number().int().min(0).optional(),
  CM_RETRY_MAX_DELAY_MS: z.coerce.number().int().min(0).optional(),
  CM_LEASE_SECONDS: z.coerce.number().int().min(1).optional(),
  CM_WORKER_JOB_TYPES: z
    .string()
    .optional()
    .transform((v) =>
      v
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : undefined,
    ),
  CM_EMBEDDED_AZURITE: bool.default(true),
  CM_STAC_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default('stac'),
  /** Schemas vector tables may be written to and are published from; the first is the default. */
  CM_GEO_SCHEMAS: z
    .string()
    .default('geo')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)).min(1)),
  /**
   * ingest_vector: sources up to this many MiB are fetched once per worker and read from a local
   * copy; larger ones are read in place through /vsiaz/ (0: always in place). Default 1024.
   */
  CM_INGEST_LOCAL_COPY_MB: z.coerce.number().int().min(0).default(1024),
  CM_URL: z.string().url().default('http://127.0.0.1:3000'),
  /** package.json whose dependencies are searched for job plugins (default: the server's own). */
  CM_PLUGINS_FROM: z.string().optional(),
  /**
   * Containers readable anonymously over HTTP, so COG hrefs in STAC open in any client. With the
   * embedded Azurite the output container `silver` is public by default; on real Azure nothing is
   * unless listed here.
   */
  CM_PUBLIC_CONTAINERS: z
    .string()
    .optional()
    .transform((v) =>
      v === undefined
        ? undefined
        : v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
    ),
  /**
   * A bootstrap admin token (at least 32 characters), accepted beside the tokens of
   * `cm token create`; recorded as "bootstrap". With no token at all the server is anonymous.
   */
  CM_API_TOKEN: z.string().min(32, 'CM_API_TOKEN must be at least 32 characters').optional(),
  /** The token the CLI sends (Authorization: Bearer). */
  CM_TOKEN: z.string().optional(),
  /** Web origins allowed cross-origin (`https://app.example.org`, comma-separated); none by default. */
  CM_CORS_ORIGINS: list.pipe(
    z.array(
      z.string().regex(/^(\*|https?:\/\/[^/\s]+)$/, 'an origin is scheme://host[:port] (no path), or * for reads only'),
    ),
  ),
  /** STAC, Features and tiles readable without a token (true) or with a `read` token (false). */
  CM_PUBLIC_READ: bool.default(true),
  /** Serve without tokens on an address other than loopback (everyone on the network is admin). */
  CM_ALLOW_ANONYMOUS_NON_LOOPBACK: bool.default(false),
  /** Largest request body accepted (bytes); 413 past it. Default 1 MiB. */
  CM_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Host names the server answers to (besides loopback names); checked whenever serving anonymously. */
  CM_ALLOWED_HOSTS: list,
  /** GET /metrics readable without a token (true) or with a `read` token (false, the default). */
  CM_METRICS_PUBLIC: bool.default(false),
  /** A worker-only process (CM_ROLE=worker) serves /metrics and /healthz on this port when set. */
  CM_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** The address of that metrics port (loopback by default: the scraper runs beside the worker). */
  CM_METRICS_HOST: z.string().default('127.0.0.1'),
  /**
   * Settled jobs older than this many days are purged (with their tasks, events, inventory rows
   * and temporary blobs) by the worker's periodic purge; 0 keeps them forever (the default).
   */
  CM_RETENTION_DAYS: z.coerce.number().min(0).default(0),
  /** How often a worker (role worker or all) runs the retention purge, in minutes. */
  CM_PURGE_INTERVAL_MINUTES: z.coerce.number().min(1).default(60),
  CM_CONTAINERS: z
    .string()
    .default('bronze,silver,gold')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
});

export type Env = z.output<typeof envSchema>;

export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid CoreMachine configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
