import { defineStage, TaskError } from '@coremachine/core-machine';
import { z } from 'zod';
import type { Params } from './parameters.ts';

const stage = defineStage<Params>();
const indexKey = (i: number) => String(i).padStart(4, '0');

export const greetingOutput = z.object({
  greeting: z.string(),
  task_index: z.number().int(),
  attempt: z.number().int(),
  timestamp: z.string(),
});

/** Stage 1: n greetings; each fails with probability `failure_rate`. */
export const greeting = stage({
  name: 'greeting',
  description: 'n tasks, each producing a greeting (fails with probability failure_rate)',
  input: z.object({ index: z.number().int(), message: z.string(), failure_rate: z.number() }),
  output: greetingOutput,
  plan: ({ params }) =>
    Array.from({ length: params.n }, (_, i) => ({
      key: indexKey(i),
      input: { index: i, message: params.message, failure_rate: params.failure_rate },
    })),
  handler: (input, ctx) => {
    if (Math.random() < input.failure_rate) {
      throw new TaskError(
        'INJECTED_FAILURE',
        `greeting ${input.index} failed on purpose (failure_rate=${input.failure_rate}, attempt ${ctx.attempt})`,
      );
    }
    return {
      greeting: `${input.message} from task ${input.index}!`,
      task_index: input.index,
      attempt: ctx.attempt,
      timestamp: new Date().toISOString(),
    };
  },
});

/** Stage 2: n replies, each quoting the greeting of the same index through lineage. */
export const reply = stage({
  name: 'reply',
  description: 'n tasks, each replying to the greeting of the same index',
  input: z.object({ index: z.number().int() }),
  output: z.object({
    reply: z.string(),
    task_index: z.number().int(),
    predecessor_accessed: z.boolean(),
    timestamp: z.string(),
  }),
  // Tasks follow the greetings that succeeded (same keys, hence lineage); with the default
  // policy a failed greeting has already failed the job, so this is all n of them.
  plan: ({ previous }) =>
    previous.filter((t) => t.status === 'completed').map((t) => ({ key: t.key, input: { index: Number(t.key) } })),
  handler: async (input, ctx) => {
    const previous = greetingOutput.nullable().parse(await ctx.predecessor());
    if (!previous)
      throw new TaskError('PREDECESSOR_MISSING', `no completed greeting for task ${input.index}`, { permanent: true });
    return {
      reply: `Replying to: ${previous.greeting}`,
      task_index: input.index,
      predecessor_accessed: true,
      timestamp: new Date().toISOString(),
    };
  },
});
