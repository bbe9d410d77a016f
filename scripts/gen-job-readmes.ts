/**
 * Renders the reference parts of every job package's README from its manifest: the parameters
 * table (from the zod parameter schema, as JSON Schema of the input), the stage list and the
 * result fields (from the result schema). Each part lives between markers, e.g.
 *
 *   <!-- generated:parameters -->
 *   ...
 *   <!-- /generated:parameters -->
 *
 * and the hand-written prose around them is kept. A README without a part's markers gets the part
 * appended under its own heading. The job packages are the plugins the server loads
 * (`findPluginPackages` on apps/server/package.json), however many there are.
 *
 * Usage (from the repository root):
 *   node --import tsx scripts/gen-job-readmes.ts           # rewrite the READMEs
 *   node --import tsx scripts/gen-job-readmes.ts --check   # fail when one is stale (lint)
 */
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { findPluginPackages } from '../packages/core-machine/src/plugin-registry.ts';

const ROOT = resolve(import.meta.dirname, '..');
const APP = join(ROOT, 'apps/server/package.json');
const SAFE = Number.MAX_SAFE_INTEGER;

type Json = Record<string, any>;

export interface Manifest {
  type: string;
  version: string;
  description: string;
  parameters: ZodLike;
  result: ZodLike;
  stages: Array<{
    name: string;
    description?: string;
    onTaskFailure?: 'fail_job' | 'continue';
    retry?: { maxAttempts?: number };
  }>;
}

interface ZodLike {
  toJSONSchema(params?: Json): Json;
  _zod?: { def?: Json };
}

// ---- JSON Schema to words -------------------------------------------------------------------

const literal = (v: unknown): string =>
  typeof v === 'string' && v !== ''
    ? v
    : Array.isArray(v)
      ? `[${v.map((x) => JSON.stringify(x)).join(', ')}]`
      : JSON.stringify(v);
const code = (v: unknown) => `\`${literal(v)}\``;
const num = (n: number) => n.toLocaleString('en-US');
const cell = (s: string) => s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');

function range(min: number | undefined, max: number | undefined, exMin?: number, exMax?: number): string {
  const lo = min !== undefined && min > -SAFE ? min : undefined;
  const hi = max !== undefined && max < SAFE ? max : undefined;
  if (lo !== undefined && hi !== undefined) return ` ${lo.toLocaleString('en-US')}–${hi.toLocaleString('en-US')}`;
  const parts = [
    lo !== undefined ? `≥ ${lo.toLocaleString('en-US')}` : exMin !== undefined ? `> ${exMin}` : '',
    hi !== undefined ? `≤ ${hi.toLocaleString('en-US')}` : exMax !== undefined ? `< ${exMax}` : '',
  ].filter(Boolean);
  return parts.length ? ` ${parts.join(', ')}` : '';
}

/** A short type description of a JSON Schema node, e.g. `integer 1–1000`, `string[]`, `` `auto` or integer``. */
export function typeOf(s: Json | boolean | undefined): string {
  if (s === undefined || s === true || (typeof s === 'object' && Object.keys(s).length === 0)) return 'any';
  if (s === false) return 'never';
  if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
    const alts: string[] = (s.anyOf ?? s.oneOf).map((x: Json) => typeOf(x));
    return [...new Set(alts)].join(' or ');
  }
  if (s.const !== undefined) return code(s.const);
  if (Array.isArray(s.enum)) return s.enum.map(code).join(', ');
  if (Array.isArray(s.type)) return s.type.join(' or ');
  switch (s.type) {
    case 'integer':
    case 'number':
      return `${s.type}${range(s.minimum, s.maximum, s.exclusiveMinimum, s.exclusiveMaximum)}`;
    case 'string': {
      if (s.format === 'date-time') return 'RFC 3339 date-time';
      if (s.format) return `string (${s.format})`;
      const notes = [
        s.pattern && s.pattern.length <= 40 ? `matching ${code(s.pattern)}` : '',
        s.minLength === 1 && s.maxLength === undefined ? 'non-empty' : '',
        s.minLength > 1 && s.maxLength !== undefined ? `${num(s.minLength)}–${num(s.maxLength)} chars` : '',
        s.minLength > 1 && s.maxLength === undefined ? `≥ ${num(s.minLength)} chars` : '',
        s.maxLength !== undefined && !(s.minLength > 1) ? `≤ ${num(s.maxLength)} chars` : '',
      ].filter(Boolean);
      return notes.length ? `string, ${notes.join(', ')}` : 'string';
    }
    case 'array': {
      if (Array.isArray(s.prefixItems)) return `[${s.prefixItems.map((x: Json) => typeOf(x)).join(', ')}]`;
      const item = typeOf(s.items);
      const list = /\s/.test(item) ? `(${item})[]` : `${item}[]`;
      return s.minItems ? `${list}, at least ${s.minItems}` : list;
    }
    case 'object':
      if (s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties)
        return `map of ${typeOf(s.additionalProperties)}`;
      return 'object';
    default:
      return String(s.type ?? 'any');
  }
}

/** The object schema inside a node (itself, or the object alternative of `object or null`). */
function objectOf(s: Json | undefined): Json | null {
  if (!s || typeof s !== 'object') return null;
  if (s.type === 'object' && s.properties) return s;
  const alts: Json[] | undefined = s.anyOf ?? s.oneOf;
  const objects = alts?.filter((a) => a && a.type === 'object' && a.properties) ?? [];
  return objects.length === 1 ? objects[0]! : null;
}

/** The default a zod field declares when JSON Schema cannot show it (a preprocess, a pipe). */
function zodDefault(schema: ZodLike, key: string): unknown {
  const def = schema._zod?.def;
  const shape = def?.['shape'] as Record<string, ZodLike> | undefined;
  let node: Json | undefined = shape?.[key]?._zod?.def;
  for (let i = 0; node && i < 8; i++) {
    if (node['type'] === 'default' || node['type'] === 'prefault') return node['defaultValue'];
    const inner = (node['innerType'] ?? node['in']) as ZodLike | undefined;
    node = inner?._zod?.def;
  }
  return undefined;
}

interface Row {
  name: string;
  type: string;
  default: string;
  required: string;
  description: string;
}

function parameterRows(obj: Json, zod: ZodLike | null, prefix = ''): Row[] {
  const required = new Set<string>(obj.required ?? []);
  const rows: Row[] = [];
  for (const [key, prop] of Object.entries<Json>(obj.properties ?? {})) {
    const name = `${prefix}${key}`;
    const dflt = prop.default !== undefined ? prop.default : zod ? zodDefault(zod, key) : undefined;
    const nested = objectOf(prop);
    rows.push({
      name: code(name),
      type: typeOf(prop),
      default: dflt === undefined ? '' : code(dflt),
      required: required.has(key) ? 'yes' : 'no',
      description: prop.description ?? nested?.description ?? '',
    });
    if (nested) rows.push(...parameterRows(nested, null, `${name}.`));
  }
  return rows;
}

function table(headers: string[], rows: string[][]): string {
  return [
    `| ${headers.join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function renderParameters(m: Manifest): string {
  const schema = m.parameters.toJSONSchema({ io: 'input', unrepresentable: 'any' });
  const obj = objectOf(schema);
  if (!obj) return `Parameters: ${typeOf(schema)}.`;
  const rows = parameterRows(obj, m.parameters);
  const out = [
    table(
      ['name', 'type', 'default', 'required', 'description'],
      rows.map((r) => [r.name, r.type, r.default, r.required, r.description]),
    ),
  ];
  if (obj.additionalProperties === false)
    out.push('Unknown keys are refused, and every refusal names its field (`params.<name>`).');
  return out.join('\n\n');
}

export function renderStages(m: Manifest): string {
  return m.stages
    .map((s, i) => {
      const notes = [
        s.onTaskFailure === 'continue'
          ? 'a task that fails for good does not stop the stage (`onTaskFailure: continue`): the job ends `completed_with_errors`'
          : '',
        s.retry?.maxAttempts ? `at most ${s.retry.maxAttempts} attempts per task` : '',
      ].filter(Boolean);
      const text = [s.description ?? '', ...notes].filter(Boolean).join('; ');
      return `${i + 1}. ${code(s.name)}${text ? `: ${text}` : ''}`;
    })
    .join('\n');
}

function resultRows(obj: Json, prefix: string, depth: number): string[][] {
  const rows: string[][] = [];
  for (const [key, prop] of Object.entries<Json>(obj.properties ?? {})) {
    const name = `${prefix}${key}`;
    // Objects that may be null (echoed parameters, optional parts) stay one row.
    const nested = prop.type === 'object' && prop.properties ? prop : null;
    const items = prop.type === 'array' ? objectOf(prop.items) : null;
    rows.push([code(name), items ? 'object[]' : typeOf(prop), prop.description ?? nested?.description ?? '']);
    if (depth > 1 && nested) rows.push(...resultRows(nested, `${name}.`, depth - 1));
    if (depth > 1 && items) rows.push(...resultRows(items, `${name}[].`, depth - 1));
  }
  return rows;
}

export function renderResult(m: Manifest): string {
  const schema = m.result.toJSONSchema({ io: 'output', unrepresentable: 'any' });
  const obj = objectOf(schema);
  if (!obj) return `The result is ${typeOf(schema)}.`;
  const rows = resultRows(obj, '', 2);
  const described = rows.some((r) => r[2]);
  return table(
    described ? ['field', 'type', 'description'] : ['field', 'type'],
    described ? rows : rows.map((r) => r.slice(0, 2)),
  );
}

// ---- READMEs --------------------------------------------------------------------------------

const SECTIONS = [
  { id: 'parameters', heading: 'Parameters', render: renderParameters },
  { id: 'stages', heading: 'Stages', render: renderStages },
  { id: 'result', heading: 'Result', render: renderResult },
] as const;

/** The README with every generated part replaced (or appended when its markers are missing). */
export function applySections(readme: string, m: Manifest): { text: string; missing: string[] } {
  let text = readme;
  const missing: string[] = [];
  for (const s of SECTIONS) {
    const open = `<!-- generated:${s.id} -->`;
    const close = `<!-- /generated:${s.id} -->`;
    const block = `${open}\n\n${s.render(m)}\n\n${close}`;
    const start = text.indexOf(open);
    const end = text.indexOf(close);
    if (start >= 0 && end > start) text = text.slice(0, start) + block + text.slice(end + close.length);
    else {
      missing.push(s.id);
      text = `${text.trimEnd()}\n\n## ${s.heading}\n\n${block}\n`;
    }
  }
  return { text, missing };
}

function packageDir(entry: string): string {
  for (let dir = dirname(entry); dirname(dir) !== dir; dir = dirname(dir))
    if (existsSync(join(dir, 'package.json'))) return realpathSync(dir);
  throw new Error(`no package.json above ${entry}`);
}

/** The README as it should be: the generated parts rendered, the whole formatted by Prettier. */
export async function renderReadme(
  current: string,
  manifest: Manifest,
  file: string,
): Promise<{ text: string; missing: string[] }> {
  const prettierConfig = (await resolveConfig(file)) ?? {};
  const { text, missing } = applySections(current, manifest);
  return { text: await format(text, { ...prettierConfig, filepath: file }), missing };
}

async function main(): Promise<number> {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  let count = 0;
  for (const p of findPluginPackages(APP)) {
    const dir = packageDir(p.entry);
    const file = join(dir, 'README.md');
    const rel = relative(ROOT, file);
    const manifest = ((await import(pathToFileURL(p.entry).href)) as { default: Manifest }).default;
    const current = existsSync(file) ? readFileSync(file, 'utf8') : `# ${p.packageName}\n\n${manifest.description}.\n`;
    const { text: next, missing } = await renderReadme(current, manifest, file);
    count += 1;
    if (next === current) continue;
    if (check) {
      stale.push(
        `${rel}: ${missing.length ? `no generated ${missing.join(', ')} markers` : 'generated parts are stale'}`,
      );
    } else {
      writeFileSync(file, next);
      console.log(`updated ${rel}${missing.length ? ` (appended ${missing.join(', ')})` : ''}`);
    }
  }
  if (stale.length) {
    console.error(
      `Job READMEs out of date with their manifests:\n${stale.map((s) => `  ${s}`).join('\n')}\n` +
        'Run `node --import tsx scripts/gen-job-readmes.ts` and commit the READMEs.',
    );
    return 1;
  }
  if (check) console.log(`gen-job-readmes: ${count} job READMEs up to date`);
  return 0;
}

// Run as a script (not when a test imports the renderer).
if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) process.exitCode = await main();
