import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parameters } from './parameters.ts';

describe('hello_world parameters', () => {
  it('publish n with its default of 3 in the input JSON Schema (what forms and cm types read)', () => {
    const schema = z.toJSONSchema(parameters, { io: 'input', unrepresentable: 'any' }) as {
      properties: Record<string, { type?: string; default?: unknown; minimum?: number; maximum?: number }>;
      required?: string[];
    };
    expect(schema.properties.n).toMatchObject({ type: 'integer', default: 3, minimum: 1, maximum: 1000 });
    expect(schema.properties.message?.default).toBe('Hello World');
    expect(schema.properties.failure_rate?.default).toBe(0);
    expect(schema.required ?? []).toEqual([]);
  });

  it('fill n with 3 when left out and coerce numeric text', () => {
    expect(parameters.parse({})).toEqual({ n: 3, message: 'Hello World', failure_rate: 0 });
    expect(parameters.parse({ n: '5' }).n).toBe(5);
    expect(parameters.parse({ n: ' 12 ' }).n).toBe(12);
  });

  it('reject text that is not an integer, and out-of-range values, naming n', () => {
    for (const n of ['ten', '2.5', 0, 1001, 1.5]) {
      const r = parameters.safeParse({ n });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.path).toEqual(['n']);
    }
  });
});
