import { defineJob } from '@coremachine/core-machine';
import { z } from 'zod';
import { parameters } from './parameters.ts';
import { greeting, reply } from './stages.ts';

export const result = z.object({
  job_type: z.literal('hello_world'),
  message: z.string(),
  n: z.number().int(),
  summary: z.object({
    greetings_sent: z.number().int(),
    greetings_succeeded: z.number().int(),
    greetings_failed: z.number().int(),
    replies_sent: z.number().int(),
    replies_succeeded: z.number().int(),
    replies_failed: z.number().int(),
    retries: z.number().int(),
  }),
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
});

/**
 * hello_world: a two-stage framework test with failure injection. Stage `greeting` runs n
 * tasks; stage `reply` runs one task per greeting, quoting it through lineage.
 */
export default defineJob({
  type: 'hello_world',
  version: '1.0.0',
  description: 'Two-stage framework test: n greetings, then n replies quoting them; optional failure injection',
  parameters,
  idExcludeKeys: ['failure_rate'],
  stages: [greeting, reply],
  result,
  aggregate: async (ctx) => {
    const greetings = await ctx.tasks('greeting');
    const replies = await ctx.tasks('reply');
    const count = (list: typeof greetings, status: string) => list.filter((t) => t.status === status).length;
    return {
      job_type: 'hello_world' as const,
      message: ctx.params.message,
      n: ctx.params.n,
      summary: {
        greetings_sent: greetings.length,
        greetings_succeeded: count(greetings, 'completed'),
        greetings_failed: count(greetings, 'failed'),
        replies_sent: replies.length,
        replies_succeeded: count(replies, 'completed'),
        replies_failed: count(replies, 'failed'),
        retries: ctx.retries,
      },
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: greetings.length + replies.length,
    };
  },
  queue: { batchSize: 100, tasksPerMessage: 25 },
});

export { parameters, greeting, reply };
