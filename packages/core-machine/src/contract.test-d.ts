/**
 * Type tests of the plugin contract (checked by `tsc` in `pnpm typecheck`): stage outputs keep
 * their types from handler to plan, predecessor and aggregate.
 */
import { expectTypeOf } from 'vitest';
import { z } from 'zod';
import { defineJob, defineStage, type CompletedOutcome, type LedgerInfo, type StageOutput } from './define-job.ts';

type Params = { n: number };
const stage = defineStage<Params>();

const greeting = stage({
  name: 'greeting',
  input: z.object({ i: z.number() }),
  output: z.object({ text: z.string(), index: z.number() }),
  plan: ({ params }) => Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: { i } })),
  handler: (input) => ({ text: `hello ${input.i}`, index: input.i }),
});

const reply = stage({
  name: 'reply',
  input: z.object({ index: z.number() }),
  output: z.object({ length: z.number() }),
  plan: async (ctx) => {
    const greetings = await ctx.outputs(greeting);
    expectTypeOf(greetings).toEqualTypeOf<Array<CompletedOutcome<typeof greeting>>>();
    expectTypeOf(greetings[0]!.output).toEqualTypeOf<{ text: string; index: number }>();
    expectTypeOf(ctx.ledger).toEqualTypeOf<LedgerInfo>();
    return greetings.map((g) => ({ key: g.key, input: { index: g.output.index } }));
  },
  handler: async (_input, ctx) => {
    const before = await ctx.predecessor(greeting);
    expectTypeOf(before).toEqualTypeOf<{ text: string; index: number } | null>();
    expectTypeOf(await ctx.predecessor()).toEqualTypeOf<unknown>();
    expectTypeOf(ctx.params).toEqualTypeOf<Params>();
    return { length: before?.text.length ?? 0 };
  },
});

export const job = defineJob({
  type: 'typed_job',
  version: '1.0.0',
  description: 'type test',
  parameters: z.object({ n: z.number() }),
  stages: [greeting, reply],
  result: z.object({ total: z.number() }),
  aggregate: async (ctx) => {
    const replies = await ctx.outputs(reply);
    expectTypeOf(replies[0]!.output.length).toEqualTypeOf<number>();
    // @ts-expect-error: a reply's output has no `text`.
    void replies[0]!.output.text;
    return { total: replies.reduce((s, r) => s + r.output.length, 0) };
  },
});

expectTypeOf<StageOutput<typeof greeting>>().toEqualTypeOf<{ text: string; index: number }>();
expectTypeOf(job.type).toEqualTypeOf<'typed_job'>();
