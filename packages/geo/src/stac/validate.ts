import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

/** Extension schema URLs CoreMachine writes into `stac_extensions`. */
export const STAC_EXTENSIONS = {
  projection: 'https://stac-extensions.github.io/projection/v2.0.0/schema.json',
  raster: 'https://stac-extensions.github.io/raster/v1.1.0/schema.json',
  file: 'https://stac-extensions.github.io/file/v2.1.0/schema.json',
  classification: 'https://stac-extensions.github.io/classification/v1.1.0/schema.json',
  alternateAssets: 'https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json',
} as const;

const ITEM_SCHEMA = 'https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json';
const COLLECTION_SCHEMA = 'https://schemas.stacspec.org/v1.0.0/collection-spec/json-schema/collection.json';
const CATALOG_SCHEMA = 'https://schemas.stacspec.org/v1.0.0/catalog-spec/json-schema/catalog.json';
const SCHEMA_DIR = join(import.meta.dirname, 'schemas');

export interface StacValidationIssue {
  /** Which schema rejected the document: `item`, `collection` or an extension URL. */
  schema: string;
  /** JSON pointer of the offending value, e.g. `/properties/datetime`. */
  path: string;
  message: string;
}

// ajv-formats is CommonJS: under Node's ESM loader its default export is the function itself,
// while TypeScript's NodeNext view puts it on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => void;

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsonFiles(path);
    return name.endsWith('.json') ? [path] : [];
  });
}

let compiled: { ajv: Ajv; item: ValidateFunction; collection: ValidateFunction; catalog: ValidateFunction } | undefined;

/**
 * One Ajv instance (draft-07, as the STAC 1.0.0 schemas declare) holding every schema file under
 * `schemas/` keyed by its `$id`: references to the official URLs resolve to the local copies,
 * so validation never touches the network.
 */
function validators() {
  if (compiled) return compiled;
  // strict: false because the official schemas use keywords Ajv's strict mode flags
  // (e.g. `additionalItems` without array `items`); they are valid draft-07.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  // The STAC schemas use the IRI formats, which ajv-formats does not define.
  ajv.addFormat('iri', (s: string) => URL.canParse(s));
  ajv.addFormat('iri-reference', (s: string) => s.length > 0 && !/[\s<>"{}|\\^`\u0000-\u001f]/.test(s));
  for (const file of jsonFiles(SCHEMA_DIR)) {
    const schema = JSON.parse(readFileSync(file, 'utf8')) as { $id?: string };
    if (schema.$id) ajv.addSchema(schema, schema.$id.replace(/#$/, ''));
  }
  compiled = {
    ajv,
    item: ajv.getSchema(ITEM_SCHEMA)!,
    collection: ajv.getSchema(COLLECTION_SCHEMA)!,
    catalog: ajv.getSchema(CATALOG_SCHEMA)!,
  };
  return compiled;
}

function issues(schema: string, errors: ErrorObject[] | null | undefined): StacValidationIssue[] {
  return (errors ?? []).map((e) => ({
    schema,
    path: e.instancePath || '/',
    message: `${e.message ?? 'invalid'}${e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : ''}`,
  }));
}

function validateWith(kind: 'item' | 'collection' | 'catalog', doc: unknown): StacValidationIssue[] {
  const v = validators();
  const core = v[kind];
  const found: StacValidationIssue[] = core(doc) ? [] : issues(kind, core.errors);
  const extensions = (doc as { stac_extensions?: unknown }).stac_extensions;
  if (Array.isArray(extensions)) {
    for (const url of extensions) {
      if (typeof url !== 'string') continue;
      const ext = v.ajv.getSchema(url) ?? v.ajv.getSchema(url.replace(/#$/, ''));
      if (!ext) {
        found.push({
          schema: url,
          path: '/stac_extensions',
          message: `extension schema ${url} is not bundled with CoreMachine, so it cannot be validated offline`,
        });
        continue;
      }
      if (!ext(doc)) found.push(...issues(url, ext.errors));
    }
  }
  return found;
}

/**
 * Validates a STAC Item against STAC 1.0.0 and every extension it declares.
 * @returns the list of problems; empty when the item is valid.
 * @example
 *   const problems = validateItem(item); if (problems.length) throw ...
 */
export function validateItem(item: unknown): StacValidationIssue[] {
  return validateWith('item', item);
}

/** Validates a STAC Collection against STAC 1.0.0 and every extension it declares. */
export function validateCollection(collection: unknown): StacValidationIssue[] {
  return validateWith('collection', collection);
}

/** Validates a STAC Catalog (e.g. a STAC API landing page) against STAC 1.0.0 and its extensions. */
export function validateCatalog(catalog: unknown): StacValidationIssue[] {
  return validateWith('catalog', catalog);
}

/** One line summarising validation issues, for error messages. */
export function formatIssues(found: StacValidationIssue[], max = 5): string {
  const shown = found
    .slice(0, max)
    .map((i) => `${i.path} ${i.message}`)
    .join('; ');
  return found.length > max ? `${shown}; and ${found.length - max} more` : shown;
}
