import { z } from 'zod';

/**
 * hello_world parameters. Strings such as "5" are coerced for `n` (query strings and CLI flags send
 * text). `n` uses `prefault` (the default goes through the coercion and checks), not `default`:
 * zod's JSON Schema drops a `default` set on a preprocess pipe, so forms and `cm types` would show
 * `n` without its default of 3.
 */
export const parameters = z.strictObject({
  n: z
    .preprocess(
      (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
      z.number({ error: 'n must be an integer from 1 to 1000' }).int('n must be an integer').min(1).max(1000),
    )
    .prefault(3)
    .describe('Number of greeting tasks (and as many replies)'),
  message: z.string().min(1).max(1000).default('Hello World').describe('Greeting text'),
  failure_rate: z
    .number()
    .min(0)
    .max(1)
    .default(0)
    .describe('Probability that a greeting task fails (exercises retries); not part of the job id'),
});

export type Params = z.output<typeof parameters>;
