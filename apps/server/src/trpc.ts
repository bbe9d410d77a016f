import {
  CoreMachineError,
  isEngineError,
  isTransientDbError,
  withActor,
  type ComplianceReport,
  type CoreMachine,
} from '@coremachine/core-machine';
import { initTRPC, TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { roleAllows, type Principal, type Role, type TokenStore } from './auth/tokens.ts';

export interface Context {
  machine: CoreMachine;
  reports: ComplianceReport[];
  version: string;
  /** Extra health probes (storage, ...), each resolving to { ok, ... }. */
  probes: Record<string, () => Promise<{ ok: boolean; [k: string]: unknown }>>;
  /**
   * Who calls: set per request by the edge (auth/edge.ts). `anonymous` (role admin) when the
   * server runs without tokens on loopback; undefined or null when no token was presented.
   */
  principal?: Principal | null;
  /** The API token store (tokens.* procedures). */
  tokens?: TokenStore;
}

/** The engine's code and the field-level issues of an error (tRPC and REST answers alike). */
export function errorDetails(error: TRPCError): {
  cmCode: CoreMachineError['code'] | null;
  issues: Array<{ path: string; message: string }>;
} {
  const cause = isEngineError(error.cause) ? error.cause : null;
  const zodIssues = (error.cause as { issues?: Array<{ path: PropertyKey[]; message: string }> } | undefined)?.issues;
  const issues = cause
    ? cause.issues
    : (zodIssues?.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) ?? []);
  return { cmCode: cause?.code ?? null, issues };
}

/** What a procedure needs: `public` (nothing) or at least this role. Without one: `admin`. */
export interface Meta {
  role?: Role | 'public';
}

const CODE_MAP: Partial<Record<CoreMachineError['code'], TRPC_ERROR_CODE_KEY>> = {
  CM_ERR_INVALID_PARAMETERS: 'BAD_REQUEST',
  CM_ERR_UNKNOWN_JOB_TYPE: 'BAD_REQUEST',
  CM_ERR_JOB_NOT_FOUND: 'NOT_FOUND',
  CM_ERR_INVALID_STATE: 'CONFLICT',
  CM_ERR_DATABASE_UNREACHABLE: 'SERVICE_UNAVAILABLE',
};

const t = initTRPC
  .context<Context>()
  .meta<Meta>()
  .create({
    // Stack traces stay in the server log, never in API responses.
    isDev: false,
    errorFormatter({ shape, error }) {
      return { ...shape, data: { ...shape.data, ...errorDetails(error) } };
    },
  });

/**
 * Maps engine errors to tRPC errors at the edge, keeping the cause. A lost or refused database
 * connection (PostgreSQL restarting, failing over) is a 503 the client may retry, not a 500.
 */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (result.ok) return result;
  const raw = result.error.cause ?? result.error;
  const cause = isEngineError(raw)
    ? raw
    : isTransientDbError(raw)
      ? new CoreMachineError('CM_ERR_DATABASE_UNREACHABLE', 'PostgreSQL is unavailable; try again shortly', {
          cause: raw,
        })
      : null;
  if (cause)
    throw new TRPCError({ code: CODE_MAP[cause.code] ?? 'INTERNAL_SERVER_ERROR', message: cause.message, cause });
  return result;
});

/** 401 without a token, 403 with too small a role (the edge already refused a wrong token). */
const authorize = t.middleware(({ ctx, meta, next }) => {
  const need = meta?.role ?? 'admin';
  if (need === 'public') return next();
  const who = ctx.principal;
  if (!who)
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'an API token is required (Authorization: Bearer <token>)' });
  if (!roleAllows(who.role, need))
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: `the token "${who.name}" has role ${who.role}; this needs ${need}`,
    });
  return next();
});

/**
 * Who did what: a mutation by a token (not anonymous) runs on behalf of its actor, so the engine
 * writes an `actor` event naming the token and its role right after its own event of the action
 * (submit, cancel, retry, rerun), in the same transaction (core-machine's actor.ts).
 */
const audit = t.middleware(({ ctx, type, path, next }) => {
  const who = ctx.principal;
  if (type !== 'mutation' || !who || who.source === 'anonymous') return next();
  return withActor({ token: who.name, role: who.role, procedure: path }, () => next());
});

export const router = t.router;
const base = t.procedure.use(mapErrors).use(authorize).use(audit);
/** Anyone (health). */
export const publicProcedure = base.meta({ role: 'public' });
/** Jobs get/list/events, types, catalogue reads. */
export const readProcedure = base.meta({ role: 'read' });
/** Read and submit. */
export const submitProcedure = base.meta({ role: 'submit' });
/** Cancel, retry, STAC writes, tokens. */
export const adminProcedure = base.meta({ role: 'admin' });
/** A procedure without a role of its own needs `admin`: a new procedure is never open by mistake. */
export const procedure = base;
