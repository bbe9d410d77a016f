import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { leakProblems, writeProblems } from './conformance.ts';

describe('leakProblems', () => {
  it('finds a stack trace, a source position and server paths anywhere in an error', () => {
    const stack = new Error('boom').stack!;
    expect(leakProblems('e', { code: 'X', message: stack })).toEqual([
      expect.stringMatching(/^e carries a stack trace: /),
      expect.stringMatching(/^e carries a source position: .*conformance\.test\.ts:\d+/),
      expect.stringMatching(/^e carries a server path \(/),
    ]);
    expect(
      leakProblems('e', { code: 'X', message: 'ok', detail: { file: path.join(os.tmpdir(), 'cm-1/a.tif') } }),
    ).toEqual([expect.stringMatching(/^e carries a server path \(/)]);
    expect(leakProblems('e', { message: 'cannot open /usr/share/proj/proj.db' })).toEqual([
      'e carries a server path (/usr): "cannot open /usr/share/proj/proj.db"',
    ]);
    expect(leakProblems('e', { message: `read ${path.resolve(import.meta.dirname, '../../..')}/x.gpkg` })).toHaveLength(
      1,
    );
  });

  it('leaves blob paths, GDAL /vsi paths and ordinary words alone', () => {
    for (const message of [
      'bronze/data/var/tmp/x.tif does not exist',
      '/vsiaz/bronze/dem/elev.tif: not recognised as a supported file format',
      'n must be at least 1',
      'at most 5 values',
      'GDAL: TIFFReadDirectory: at offset 8',
    ])
      expect(leakProblems('e', { code: 'X', message })).toEqual([]);
    expect(leakProblems('e', null)).toEqual([]);
  });
});

describe('writeProblems', () => {
  it('names each table, created table and container that changed', () => {
    const before = { rows: { 's.jobs': 1, 's.tasks': 0 }, tables: ['geo.a'], blobs: { c1: 2, c2: null } };
    const after = { rows: { 's.jobs': 2, 's.tasks': 0 }, tables: ['geo.a', 'geo.b'], blobs: { c1: 3, c2: 0 } };
    expect(writeProblems(before, after)).toEqual([
      's.jobs: 1 row(s) written',
      'table geo.b created',
      'container c1: 1 blob(s) written',
      'container c2 created',
    ]);
    expect(writeProblems(before, before)).toEqual([]);
  });
});
