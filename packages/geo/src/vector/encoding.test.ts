import { describe, expect, it } from 'vitest';
import { decodeRaw, detectSingleByte, isUtf8, rawBytes } from './encoding.ts';
import { typeHasM, typeHasZ } from './geometry-kind.ts';

/** A string as GDAL returns it read with ENCODING=ISO-8859-1: one code point per byte. */
const raw = (bytes: number[]) => String.fromCharCode(...bytes);
const latin1 = (s: string) => raw([...s].map((c) => c.charCodeAt(0)));
const cp1251 = (s: string) => raw([...s].map((c) => c.charCodeAt(0) - 0x410 + 0xc0));

describe('detectSingleByte', () => {
  it('tells ISO-8859-1 from CP1252 and refuses text that is not Western', () => {
    expect(detectSingleByte([latin1('São Paulo'), latin1('Ærøskøbing')])).toBe('ISO-8859-1');
    // 0x93/0x94: CP1252 curly quotes; 0x80: euro.
    expect(detectSingleByte([raw([0x93, 0x47, 0x72, 0xfc, 0xdf, 0x65, 0x94, 0x20, 0x80])])).toBe('CP1252');
    expect(detectSingleByte([raw([0x41, 0x81, 0x42])])).toBeNull();
    expect(detectSingleByte([cp1251('Москва')])).toBeNull();
  });

  it('decodes raw bytes in an encoding', () => {
    expect(decodeRaw(raw([0x93, 0x61, 0x94]), 'CP1252')).toBe('“a”');
    expect(decodeRaw(latin1('Zürich'), 'ISO-8859-1')).toBe('Zürich');
    expect(decodeRaw(raw([0x5a, 0xc3, 0xbc]), 'UTF-8')).toBe('Zü');
    expect(decodeRaw(raw([0x5a, 0xfc]), 'UTF-8')).toBeNull();
    expect(isUtf8(rawBytes(raw([0xc3, 0xbc])))).toBe(true);
  });
});

describe('geometry type dimensions', () => {
  it('reads Z and M from ISO and 2.5D codes', () => {
    expect([typeHasZ(2002), typeHasM(2002)]).toEqual([false, true]); // LineString M
    expect([typeHasZ(3005), typeHasM(3005)]).toEqual([true, true]); // MultiLineString ZM
    expect([typeHasZ(0x80000002), typeHasM(0x80000002)]).toEqual([true, false]); // LineString25D
    expect([typeHasZ(1003), typeHasM(1003)]).toEqual([true, false]); // Polygon Z
    expect([typeHasZ(6), typeHasM(6)]).toEqual([false, false]);
  });
});
