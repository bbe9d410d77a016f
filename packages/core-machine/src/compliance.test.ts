import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { assertCompliant, checkCompliance, checkUniqueTypes, formatComplianceTable } from './compliance.ts';
import { defineJob, defineStage } from './define-job.ts';

const good = () =>
  defineJob({
    type: 'good_job',
    version: '1.0.0',
    description: 'a compliant job',
    parameters: z.object({ n: z.number().default(1) }),
    stages: [
      defineStage<{ n: number }>()({
        name: 'one',
        input: z.object({}),
        output: z.object({}),
        plan: () => [],
        handler: () => ({}),
      }),
    ],
    result: z.object({}),
    aggregate: () => ({}),
  });

describe('checkCompliance', () => {
  it('accepts a complete manifest', () => {
    expect(checkCompliance('pkg', good())).toMatchObject({
      compliant: true,
      type: 'good_job',
      stages: ['one'],
      problems: [],
    });
  });

  it.each([
    [
      'aggregate',
      (m: any) => {
        delete m.aggregate;
      },
      'aggregate_job_results',
      "expected 'aggregate' to be a function, received undefined",
    ],
    [
      'result schema',
      (m: any) => {
        m.result = {};
      },
      'aggregate_job_results',
      "expected 'result' to be a zod schema, received object",
    ],
    [
      'parameters',
      (m: any) => {
        m.parameters = { n: 'number' };
      },
      'validate_job_parameters',
      "expected 'parameters' to be a zod schema, received object",
    ],
    [
      'stages',
      (m: any) => {
        m.stages = [];
      },
      'stages',
      'expected a non-empty array of stages, received an empty array',
    ],
    [
      'plan',
      (m: any) => {
        m.stages = [{ ...m.stages[0], plan: undefined }];
      },
      'create_tasks_for_stage',
      "stage 1 'one': expected 'plan' to be a function, received undefined",
    ],
    [
      'handler',
      (m: any) => {
        m.stages = [{ ...m.stages[0], handler: 'run' }];
      },
      'task_handlers',
      "stage 1 'one': expected 'handler' to be a function, received string",
    ],
    [
      'brand',
      (m: any) => {
        delete m.kind;
      },
      'manifest',
      "expected kind 'coremachine.job' (build it with defineJob), received undefined",
    ],
    [
      'type',
      (m: any) => {
        m.type = 'Hello World';
      },
      'type',
      `expected a snake_case string such as 'hello_world', received "Hello World"`,
    ],
  ])('names the missing %s', (_what, mutate, element, message) => {
    const m = { ...good() } as any;
    mutate(m);
    const report = checkCompliance('@acme/job-x', m);
    expect(report.compliant).toBe(false);
    expect(report.problems).toContainEqual({ element, message });
  });

  it('rejects duplicate stage names', () => {
    const m = good();
    const report = checkCompliance('p', { ...m, stages: [m.stages[0], m.stages[0]] });
    expect(report.problems).toContainEqual({ element: 'stages', message: "stage 2 'one': duplicate stage name 'one'" });
  });

  it('rejects a non-object export', () => {
    expect(checkCompliance('p', undefined).problems).toEqual([
      { element: 'manifest', message: 'expected the default export to be defineJob({...}), received undefined' },
    ]);
  });

  it('flags duplicate types across packages and the load error names both', () => {
    const reports = [checkCompliance('@a/one', good()), checkCompliance('@b/two', good())];
    checkUniqueTypes(reports);
    expect(reports[0]!.compliant).toBe(true);
    expect(reports[1]!.compliant).toBe(false);
    expect(() => assertCompliant(reports)).toThrow(
      "@b/two (good_job): type: duplicate job type 'good_job': already declared by @a/one",
    );
  });

  it('formats the compliance table', () => {
    const table = formatComplianceTable([
      checkCompliance('@a/one', good()),
      checkCompliance('@b/two', { ...good(), type: 'other', aggregate: undefined }),
    ]);
    expect(table).toContain('⚠️ 1/2 jobs compliant (50.0%)');
    expect(table).toContain('| `good_job` | @a/one | ✅ | None |');
    expect(table).toContain('| `other` | @b/two | ❌ | `aggregate_job_results` |');
  });
});
