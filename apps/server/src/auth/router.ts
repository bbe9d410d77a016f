/** tokens.list / create / revoke: API token management for admins (the CLI works on the database). */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { adminProcedure, router, type Context } from '../trpc.ts';
import { ROLES, TokenError, type TokenStore } from './tokens.ts';

function store(ctx: Context): TokenStore {
  if (!ctx.tokens) throw new TRPCError({ code: 'NOT_IMPLEMENTED', message: 'no token store in this server' });
  return ctx.tokens;
}

const asBadRequest = (err: unknown): never => {
  if (err instanceof TokenError) throw new TRPCError({ code: 'BAD_REQUEST', message: err.message });
  throw err;
};

export const tokensRouter = router({
  list: adminProcedure
    .input(z.object({ includeRevoked: z.boolean().default(false) }).default({ includeRevoked: false }))
    .query(({ ctx, input }) => store(ctx).list(input)),
  /** The token's text is in this answer only. */
  create: adminProcedure
    .input(z.object({ name: z.string().min(1).max(64), role: z.enum(ROLES) }))
    .mutation(({ ctx, input }) => store(ctx).create(input).catch(asBadRequest)),
  revoke: adminProcedure.input(z.object({ name: z.string().min(1).max(64) })).mutation(async ({ ctx, input }) => {
    const row = await store(ctx).revoke(input.name);
    if (!row) throw new TRPCError({ code: 'NOT_FOUND', message: `no active token named ${input.name}` });
    return row;
  }),
});
