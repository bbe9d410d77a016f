import { z } from 'zod';

/** zod mirrors of the geo/vector plan types, for stage inputs and outputs. */
export const columnPlan = z.object({ source: z.string(), name: z.string(), ogrType: z.string(), pgType: z.string() });

export const geometryPlan = z.object({
  type: z.string(),
  z: z.boolean(),
  m: z.boolean().optional(),
  family: z.enum(['point', 'line', 'polygon', 'collection']).nullable(),
  multi: z.boolean(),
});

export const featureRange = z.object({
  index: z.int().nonnegative(),
  start: z.int().nonnegative(),
  count: z.int().positive(),
  fidMin: z.number().optional(),
  fidNext: z.number().optional(),
  preserveFid: z.boolean().optional(),
  fidOffset: z.number().optional(),
});

export const tableRef = z.object({ schema: z.string(), table: z.string() });

export const skipped = z.record(z.string(), z.int().nonnegative());

export const dimensions = z.enum(['XY', 'XYZ', 'XYM', 'XYZM']);
