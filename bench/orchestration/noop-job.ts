import { defineJob, defineStage } from '@coremachine/core-machine';
import { z } from 'zod';

/** A job type of one stage of `n` tasks that do nothing (the orchestration benches' workload). */
export function noopJob(
  type: string,
  description: string,
  queue: { batchSize: number; concurrency: number; tasksPerMessage: number },
) {
  return defineJob({
    type,
    version: '1.0.0',
    description,
    parameters: z.object({ n: z.number().int(), run: z.string() }),
    stages: [
      defineStage<{ n: number }>()({
        name: 'noop',
        input: z.object({}),
        output: z.object({}),
        plan: ({ params }) => Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: {} })),
        handler: () => ({}),
      }),
    ],
    result: z.object({ tasks: z.number() }),
    aggregate: (ctx) => ({ tasks: ctx.stages[0]!.completed }),
    queue,
  });
}
