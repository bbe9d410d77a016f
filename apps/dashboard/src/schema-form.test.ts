import { describe, expect, it } from 'vitest';
import { fieldsOf, initialValues, issuesByField, toParams, type JsonSchema } from './schema-form.ts';

const schema: JsonSchema = {
  type: 'object',
  properties: {
    n: { type: 'integer', minimum: 1, maximum: 1000, description: 'Number of tasks' },
    message: { type: 'string', default: 'Hello World' },
    chunk_size: {
      default: 'auto',
      anyOf: [
        { type: 'string', const: 'auto' },
        { type: 'integer', minimum: 1000, maximum: 100000 },
      ],
    },
    limit: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }] },
    raster_type: { type: 'string', enum: ['auto', 'rgb'], default: 'auto' },
    overwrite: { type: 'boolean', default: false },
    filter: { type: 'object', properties: { prefix: { type: 'string' } } },
  },
  required: ['message'],
};

describe('schema form', () => {
  const fields = fieldsOf(schema);
  it('derives one field per property with kind, required mark, default and hint', () => {
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ['n', 'integer', false],
      ['message', 'text', true],
      ['chunk_size', 'choice-or-value', false],
      ['limit', 'integer', false],
      ['raster_type', 'select', false],
      ['overwrite', 'boolean', false],
      ['filter', 'json', false],
    ]);
    expect(fields[0]!.hint).toBe('1 to 1000');
    expect(fields[0]!.description).toBe('Number of tasks');
    expect(fields[2]!.hint).toBe('"auto" or integer (1000 to 100000)');
    expect(fields[3]!.nullable).toBe(true);
    expect(initialValues(fields)).toEqual({
      n: '',
      message: 'Hello World',
      chunk_size: 'auto',
      limit: '',
      raster_type: 'auto',
      overwrite: 'false',
      filter: '',
    });
  });

  it('turns values into parameters, leaving empty fields out', () => {
    const { params, errors } = toParams(fields, {
      n: '5',
      message: 'hi',
      chunk_size: '5000',
      limit: '',
      raster_type: 'rgb',
      overwrite: 'true',
      filter: '{"prefix":"a/"}',
    });
    expect(errors).toEqual({});
    expect(params).toEqual({
      n: 5,
      message: 'hi',
      chunk_size: 5000,
      raster_type: 'rgb',
      overwrite: true,
      filter: { prefix: 'a/' },
    });
    expect(toParams(fields, { n: 'ten', chunk_size: 'auto' }).params).toEqual({ n: 'ten', chunk_size: 'auto' });
    expect(toParams(fields, { filter: '{oops' }).errors).toEqual({ filter: 'is not valid JSON' });
  });

  it('files the API issues under the fields they name', () => {
    expect(
      issuesByField(fields, [
        { path: 'params.n', message: 'Too big: expected number to be <=1000' },
        { path: 'params.filter.prefix', message: 'Invalid input' },
        { path: 'params.bogus', message: 'Unrecognized key' },
      ]),
    ).toEqual({
      n: ['Too big: expected number to be <=1000'],
      filter: ['prefix: Invalid input'],
      '': ['params.bogus: Unrecognized key'],
    });
  });
});
