import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineJob, defineStage, permanentError, TASK_TMP_ROOT } from '@coremachine/core-machine';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

const tempJob = defineJob({
  type: 'temp_job',
  version: '1.0.0',
  description: 'writes a file in its temporary folder',
  parameters: z.object({ fail: z.boolean(), tag: z.string() }),
  stages: [
    defineStage<{ fail: boolean; tag: string }>()({
      name: 'write',
      input: z.object({}),
      output: z.object({ dir: z.string() }),
      onTaskFailure: 'continue',
      plan: () => [{ key: 'a', input: {} }],
      handler: async (_input, ctx) => {
        const dir = await ctx.tempDir();
        await writeFile(join(dir, 'big.bin'), Buffer.alloc(1024));
        await ctx.db.query(`CREATE TABLE IF NOT EXISTS public.cm_temp_dirs (tag text, dir text)`);
        await ctx.db.query(`INSERT INTO public.cm_temp_dirs VALUES ($1, $2)`, [ctx.params.tag, dir]);
        if (ctx.params.fail) throw permanentError('ASKED_TO_FAIL', 'fails on purpose');
        return { dir };
      },
    }),
  ],
  result: z.object({}),
  aggregate: () => ({}),
});

describe('temporary folders of tasks', () => {
  let tm: TestMachine;
  beforeAll(async () => {
    tm = await createTestMachine({ plugins: [tempJob] });
  });
  afterAll(() => tm.close());

  it.each([false, true])('are removed when the handler ends (failing: %s)', async (fail) => {
    const tag = `t-${fail}-${Date.now()}`;
    const job = await tm.submitAndWait('temp_job', { fail, tag });
    expect(job.status).toBe(fail ? 'completed_with_errors' : 'completed');
    const { rows } = await tm.pool.query(`SELECT dir FROM public.cm_temp_dirs WHERE tag = $1`, [tag]);
    expect(rows).toHaveLength(1);
    expect(rows[0].dir.startsWith(TASK_TMP_ROOT)).toBe(true);
    expect(existsSync(rows[0].dir)).toBe(false);
  });

  it('a worker starting removes the folders of dead worker processes, not of live ones', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid is free
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      const dead = join(TASK_TMP_ROOT, `${deadPid}-aaaaaa`, 'task-1');
      const alive = join(TASK_TMP_ROOT, `${live.pid}-bbbbbb`, 'task-1');
      for (const d of [dead, alive]) {
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'chunk.tif'), 'x');
      }
      const worker = await tm.machine.startWorker({ jobTypes: [], control: false });
      expect(existsSync(join(TASK_TMP_ROOT, `${deadPid}-aaaaaa`))).toBe(false);
      expect(existsSync(alive)).toBe(true);
      await worker.stop();
    } finally {
      live.kill('SIGKILL');
    }
  });
});
