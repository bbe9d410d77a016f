import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySections, renderReadme, typeOf, type Manifest } from './gen-job-readmes.ts';

/** What a zod schema offers the renderer: its JSON Schema, and its definition for defaults. */
const schema = (json: Record<string, unknown>, shape: Record<string, unknown> = {}) => ({
  toJSONSchema: () => json,
  _zod: { def: { shape } },
});

const manifest = {
  type: 'demo_job',
  version: '1.0.0',
  description: 'A demo',
  parameters: schema(
    {
      type: 'object',
      properties: {
        // a preprocess hides the default from JSON Schema: the renderer reads it from the definition
        count: { type: 'integer', minimum: 1, maximum: 1000, description: 'How many' },
        name: { type: 'string', minLength: 1, description: 'Who' },
        mode: { type: 'string', enum: ['fast', 'safe'], default: 'safe' },
        filter: {
          type: 'object',
          properties: { prefix: { type: 'string', description: 'Under this prefix' } },
          required: ['prefix'],
          additionalProperties: false,
        },
      },
      required: ['name'],
      additionalProperties: false,
    },
    { count: { _zod: { def: { type: 'default', defaultValue: 3, innerType: {} } } } },
  ),
  result: schema({
    type: 'object',
    properties: {
      total: { type: 'integer' },
      parts: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' } } } },
    },
  }),
  stages: [
    { name: 'split', description: 'One task: plan the parts' },
    { name: 'work', description: 'One task per part', onTaskFailure: 'continue' },
  ],
} as unknown as Manifest;

const README = `# demo

Intro prose.

## Parameters

<!-- generated:parameters -->
| old | table |
<!-- /generated:parameters -->

Prose after the table.

## Stages

<!-- generated:stages -->
<!-- /generated:stages -->

## Result

<!-- generated:result -->
<!-- /generated:result -->
`;

describe('gen-job-readmes', () => {
  it('describes JSON Schema types in words', () => {
    expect(typeOf({ type: 'integer', minimum: 1, maximum: 1000 })).toBe('integer 1–1,000');
    expect(
      typeOf({
        anyOf: [
          { type: 'string', const: 'auto' },
          { type: 'integer', minimum: 1000 },
        ],
      }),
    ).toBe('`auto` or integer ≥ 1,000');
    expect(typeOf({ type: 'array', items: { type: 'string' } })).toBe('string[]');
    expect(typeOf({ type: 'string', enum: ['a', 'b'] })).toBe('`a`, `b`');
    expect(typeOf({ type: 'object', additionalProperties: { type: 'integer' } })).toBe('map of integer');
    expect(typeOf({ type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER })).toBe(
      'integer',
    );
  });

  it('replaces the generated parts and keeps the prose around them', () => {
    const { text, missing } = applySections(README, manifest);
    expect(missing).toEqual([]);
    expect(text).toContain('Intro prose.');
    expect(text).toContain('Prose after the table.');
    expect(text).not.toContain('| old | table |');
    expect(text).toContain('| `count` | integer 1–1,000 | `3` | no | How many |');
    expect(text).toContain('| `name` | string, non-empty |  | yes | Who |');
    expect(text).toContain('| `mode` | `fast`, `safe` | `safe` | no |  |');
    expect(text).toContain('| `filter.prefix` | string |  | yes | Under this prefix |');
    expect(text).toContain('Unknown keys are refused');
    expect(text).toContain('1. `split`: One task: plan the parts\n2. `work`: One task per part; a task that fails');
    expect(text).toContain('| `parts[].id` | string |');
  });

  it('appends a part whose markers are missing, and a rendered README is stable', async () => {
    const { text, missing } = applySections('# demo\n\nOnly prose.\n', manifest);
    expect(missing).toEqual(['parameters', 'stages', 'result']);
    expect(text).toMatch(/Only prose\.\n\n## Parameters\n\n<!-- generated:parameters -->/);
    const file = join(import.meta.dirname, '..', 'packages', 'job-demo', 'README.md');
    const once = await renderReadme(README, manifest, file);
    const twice = await renderReadme(once.text, manifest, file);
    expect(twice.text).toBe(once.text); // what --check compares: no drift after a rewrite
    expect(once.text).not.toBe(README); // the stale README is reported
  });
});
