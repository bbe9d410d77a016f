/**
 * Turns a job type's parameters JSON Schema (as `jobs.types` publishes it, zod's input side)
 * into form fields, and form values back into parameters. Validation stays on the server: the
 * form shows the API's own messages next to the fields they name.
 */

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  items?: JsonSchema;
}

export type FieldKind = 'text' | 'number' | 'integer' | 'boolean' | 'select' | 'json' | 'choice-or-value';

export interface Field {
  name: string;
  kind: FieldKind;
  required: boolean;
  description: string | null;
  default: unknown;
  /** For `select`: the allowed values; for `choice-or-value`: the named constants. */
  options: string[];
  /** A short hint: range, length, pattern, the other branch of a union. */
  hint: string | null;
  nullable: boolean;
}

/** Schemas of the branches other than `null` (zod writes `.nullable()` as anyOf [..., null]). */
function nonNull(schema: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  if (!schema.anyOf) return { schema, nullable: false };
  const rest = schema.anyOf.filter((s) => s.type !== 'null');
  const nullable = rest.length < schema.anyOf.length;
  if (rest.length === 1) return { schema: { ...rest[0], ...pick(schema) }, nullable };
  return { schema: { ...schema, anyOf: rest }, nullable };
}
const pick = (s: JsonSchema) => ({
  ...(s.description !== undefined ? { description: s.description } : {}),
  ...(s.default !== undefined ? { default: s.default } : {}),
});

function range(s: JsonSchema): string | null {
  const parts: string[] = [];
  if (s.minimum !== undefined && s.maximum !== undefined && s.maximum < 1e15)
    parts.push(`${s.minimum} to ${s.maximum}`);
  else if (s.minimum !== undefined) parts.push(`at least ${s.minimum}`);
  else if (s.maximum !== undefined) parts.push(`at most ${s.maximum}`);
  if (s.maxLength !== undefined) parts.push(`up to ${s.maxLength} characters`);
  if (s.format) parts.push(s.format);
  else if (s.pattern && s.pattern.length <= 40) parts.push(`pattern ${s.pattern}`);
  return parts.length ? parts.join(', ') : null;
}

export function fieldsOf(root: JsonSchema): Field[] {
  const required = new Set(root.required ?? []);
  return Object.entries(root.properties ?? {}).map(([name, raw]) => {
    const { schema, nullable } = nonNull(raw);
    const base = {
      name,
      required: required.has(name),
      description: schema.description ?? raw.description ?? null,
      default: raw.default ?? schema.default,
      nullable,
    };
    if (schema.enum) return { ...base, kind: 'select', options: schema.enum.map(String), hint: null } satisfies Field;
    if (schema.anyOf) {
      const consts = schema.anyOf.filter((s) => s.const !== undefined).map((s) => String(s.const));
      const other = schema.anyOf.find((s) => s.const === undefined);
      const hint = other
        ? `${consts.map((c) => `"${c}"`).join(' or ')} or ${other.type ?? 'a value'}${range(other) ? ` (${range(other)})` : ''}`
        : null;
      return { ...base, kind: 'choice-or-value', options: consts, hint } satisfies Field;
    }
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    const kind: FieldKind =
      type === 'boolean'
        ? 'boolean'
        : type === 'integer'
          ? 'integer'
          : type === 'number'
            ? 'number'
            : type === 'object' || type === 'array'
              ? 'json'
              : 'text';
    return {
      ...base,
      kind,
      options: [],
      hint: kind === 'json' ? `JSON ${type}` : range(schema),
    } satisfies Field;
  });
}

export type FormValues = Record<string, string>;

/** Initial form values: each field's default, or empty. */
export function initialValues(fields: Field[]): FormValues {
  return Object.fromEntries(
    fields.map((f) => [
      f.name,
      f.default === undefined || f.default === null
        ? ''
        : typeof f.default === 'object'
          ? JSON.stringify(f.default)
          : String(f.default),
    ]),
  );
}

/**
 * Parameters from form values. Empty fields are left out (the server applies defaults and says
 * what is required); numbers that do not parse are sent as typed so the API names the field.
 * Returns the fields whose JSON does not parse instead (nothing is submitted then).
 */
export function toParams(
  fields: Field[],
  values: FormValues,
): { params: Record<string, unknown>; errors: Record<string, string> } {
  const params: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const raw = values[f.name] ?? '';
    if (raw.trim() === '') continue;
    switch (f.kind) {
      case 'boolean':
        params[f.name] = raw === 'true';
        break;
      case 'integer':
      case 'number': {
        const n = Number(raw);
        params[f.name] = Number.isFinite(n) ? n : raw;
        break;
      }
      case 'choice-or-value': {
        const n = Number(raw);
        params[f.name] = f.options.includes(raw) || !Number.isFinite(n) ? raw : n;
        break;
      }
      case 'json':
        try {
          params[f.name] = JSON.parse(raw);
        } catch {
          errors[f.name] = 'is not valid JSON';
        }
        break;
      default:
        params[f.name] = raw;
    }
  }
  return { params, errors };
}

/**
 * The API's issues, by form field: `params.n` → `n`, `params.filter.prefix` → `filter`
 * (prefixed with the nested path). Issues that name no field go under `''`.
 */
export function issuesByField(
  fields: Field[],
  issues: Array<{ path: string; message: string }>,
): Record<string, string[]> {
  const names = new Set(fields.map((f) => f.name));
  const out: Record<string, string[]> = {};
  for (const issue of issues) {
    for (const path of issue.path.split(', ')) {
      const parts = path.split('.');
      if (parts[0] === 'params') parts.shift();
      const [head, ...rest] = parts;
      const key = head && names.has(head) ? head : '';
      const text =
        key && rest.length ? `${rest.join('.')}: ${issue.message}` : key ? issue.message : `${path}: ${issue.message}`;
      (out[key] ??= []).push(text);
    }
  }
  return out;
}
