import { defineJob, defineStage } from '@coremachine/core-machine';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestMachine, DATABASE_URL } from './index.ts';

const echo = defineJob({
  type: 'echo',
  version: '1.0.0',
  description: 'echoes its words',
  parameters: z.object({ words: z.array(z.string()) }),
  stages: [
    defineStage<{ words: string[] }>()({
      name: 'echo',
      input: z.object({ w: z.string() }),
      output: z.object({ w: z.string() }),
      plan: ({ params }) => params.words.map((w) => ({ key: w, input: { w } })),
      handler: ({ w }) => ({ w: w.toUpperCase() }),
    }),
  ],
  result: z.object({ words: z.array(z.string()) }),
  aggregate: async (ctx) => ({ words: (await ctx.tasks('echo')).map((t) => (t.output as { w: string }).w) }),
});

describe('createTestMachine', () => {
  it('runs a job on its own schema and drops the schema on close', async () => {
    const tm = await createTestMachine({ plugins: [echo] });
    expect(tm.schema).toMatch(/^cmt_[0-9a-f]{10}$/);
    const job = await tm.submitAndWait('echo', { words: ['b', 'a'] });
    expect(job.status).toBe('completed');
    expect(job.result).toEqual({ words: ['A', 'B'] });
    expect((await tm.tasks(job.id)).map((t) => t.key)).toEqual(['a', 'b']);
    await tm.close();
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const { rows } = await pool.query(`SELECT nspname FROM pg_namespace WHERE nspname IN ($1, $2)`, [
      tm.schema,
      `${tm.schema}_queue`,
    ]);
    await pool.end();
    expect(rows).toEqual([]);
  });
});
