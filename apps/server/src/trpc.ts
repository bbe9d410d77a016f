import { CoreMachineError, type ComplianceReport, type CoreMachine } from '@coremachine/core-machine';
import { initTRPC, TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';

export interface Context {
  machine: CoreMachine;
  reports: ComplianceReport[];
  version: string;
  /** Extra health probes (storage, ...), each resolving to { ok, ... }. */
  probes: Record<string, () => Promise<{ ok: boolean; [k: string]: unknown }>>;
}

const CODE_MAP: Partial<Record<CoreMachineError['code'], TRPC_ERROR_CODE_KEY>> = {
  CM_ERR_INVALID_PARAMETERS: 'BAD_REQUEST',
  CM_ERR_UNKNOWN_JOB_TYPE: 'BAD_REQUEST',
  CM_ERR_JOB_NOT_FOUND: 'NOT_FOUND',
  CM_ERR_INVALID_STATE: 'CONFLICT',
  CM_ERR_DATABASE_UNREACHABLE: 'INTERNAL_SERVER_ERROR',
};

const t = initTRPC.context<Context>().create({
  // Stack traces stay in the server log, never in API responses.
  isDev: false,
  errorFormatter({ shape, error }) {
    const cause = error.cause instanceof CoreMachineError ? error.cause : null;
    const zodIssues = (error.cause as { issues?: Array<{ path: PropertyKey[]; message: string }> } | undefined)?.issues;
    const issues = cause
      ? cause.issues
      : (zodIssues?.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) ?? []);
    return { ...shape, data: { ...shape.data, cmCode: cause?.code ?? null, issues } };
  },
});

/** Maps engine errors to tRPC errors at the edge, keeping the cause. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof CoreMachineError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: CODE_MAP[cause.code] ?? 'INTERNAL_SERVER_ERROR', message: cause.message, cause });
  }
  return result;
});

export const router = t.router;
export const procedure = t.procedure.use(mapErrors);
