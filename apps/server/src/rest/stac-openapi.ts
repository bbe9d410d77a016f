/**
 * The OpenAPI 3.0 description of the STAC API (what the landing page's `service-desc` link
 * points at, as STAC API Core requires). Server URL and link targets are the request's.
 */
import { MAX_LIMIT } from '@coremachine/geo/stac';

export const OPENAPI_TYPE = 'application/vnd.oai.openapi+json;version=3.0';

const json = (schema: Record<string, unknown>, type = 'application/json') => ({ content: { [type]: { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const ok = (description: string, schema: Record<string, unknown>, type?: string) => ({
  description,
  ...json(schema, type),
});
const errors = {
  '400': ok('Invalid parameter', ref('Exception')),
  '404': ok('Not found', ref('Exception')),
};

/** The document, for a STAC API mounted at `base` (e.g. `http://host/stac`). */
export function stacOpenApi(base: string): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: {
      title: 'CoreMachine STAC API',
      version: '1.0.0',
      description:
        'STAC API v1.0.0 (core, collections, OGC API Features, item search) over the rasters and vector datasets catalogued by CoreMachine jobs.',
    },
    servers: [{ url: base }],
    paths: {
      '/': {
        get: {
          summary: 'Landing page',
          operationId: 'getLandingPage',
          responses: { '200': ok('Landing page', ref('Catalog')) },
        },
      },
      '/api': {
        get: {
          summary: 'This OpenAPI document',
          operationId: 'getOpenApi',
          responses: { '200': ok('OpenAPI 3.0 document', { type: 'object' }, OPENAPI_TYPE) },
        },
      },
      '/conformance': {
        get: {
          summary: 'Conformance classes',
          operationId: 'getConformanceDeclaration',
          responses: { '200': ok('Conformance classes', ref('Conformance')) },
        },
      },
      '/collections': {
        get: {
          summary: 'Collections',
          operationId: 'getCollections',
          responses: { '200': ok('Collections', ref('Collections')) },
        },
        post: {
          summary: 'Create a collection',
          operationId: 'postCollection',
          requestBody: { required: true, ...json(ref('Collection')) },
          responses: {
            '201': ok('Created', ref('Collection')),
            '400': errors['400'],
            '409': ok('Exists', ref('Exception')),
          },
        },
      },
      '/collections/{collectionId}': {
        get: {
          summary: 'A collection',
          operationId: 'describeCollection',
          parameters: [param('collectionId')],
          responses: { '200': ok('Collection', ref('Collection')), ...errors },
        },
        put: {
          summary: 'Create or replace a collection',
          operationId: 'putCollection',
          parameters: [param('collectionId')],
          requestBody: { required: true, ...json(ref('Collection')) },
          responses: { '200': ok('Replaced', ref('Collection')), '201': ok('Created', ref('Collection')), ...errors },
        },
      },
      '/collections/{collectionId}/items': {
        get: {
          summary: 'Items of a collection',
          operationId: 'getFeatures',
          parameters: [param('collectionId'), param('bbox'), param('datetime'), param('limit'), param('token')],
          responses: { '200': ok('Items', ref('ItemCollection'), 'application/geo+json'), ...errors },
        },
      },
      '/collections/{collectionId}/items/{featureId}': {
        get: {
          summary: 'An item',
          operationId: 'getFeature',
          parameters: [
            param('collectionId'),
            { name: 'featureId', in: 'path', required: true, schema: { type: 'string' } },
          ],
          responses: { '200': ok('Item', ref('Item'), 'application/geo+json'), ...errors },
        },
      },
      '/search': {
        get: {
          summary: 'Item search',
          operationId: 'getItemSearch',
          parameters: [
            param('bbox'),
            param('datetime'),
            param('limit'),
            param('token'),
            {
              name: 'collections',
              in: 'query',
              schema: { type: 'array', items: { type: 'string' } },
              style: 'form',
              explode: false,
            },
            {
              name: 'ids',
              in: 'query',
              schema: { type: 'array', items: { type: 'string' } },
              style: 'form',
              explode: false,
            },
            { name: 'intersects', in: 'query', description: 'A GeoJSON geometry (JSON)', schema: { type: 'string' } },
          ],
          responses: { '200': ok('Items', ref('ItemCollection'), 'application/geo+json'), '400': errors['400'] },
        },
        post: {
          summary: 'Item search',
          operationId: 'postItemSearch',
          requestBody: { required: true, ...json(ref('SearchBody')) },
          responses: { '200': ok('Items', ref('ItemCollection'), 'application/geo+json'), '400': errors['400'] },
        },
      },
    },
    components: {
      parameters: {
        collectionId: { name: 'collectionId', in: 'path', required: true, schema: { type: 'string' } },
        bbox: {
          name: 'bbox',
          in: 'query',
          description: 'west,south,east,north (WGS 84); west > east crosses the antimeridian',
          schema: { type: 'array', minItems: 4, maxItems: 6, items: { type: 'number' } },
          style: 'form',
          explode: false,
        },
        datetime: {
          name: 'datetime',
          in: 'query',
          description:
            'An RFC 3339 date-time with a time and offset (2020-01-01T00:00:00Z), or an interval start/end with .. for an open end. A date alone is refused (400).',
          schema: { type: 'string' },
        },
        limit: {
          name: 'limit',
          in: 'query',
          description: `Items per page; values above ${MAX_LIMIT} are clamped to ${MAX_LIMIT}`,
          schema: { type: 'integer', minimum: 1, default: 10 },
        },
        token: { name: 'token', in: 'query', description: 'Paging token of a next link', schema: { type: 'string' } },
      },
      schemas: {
        Exception: {
          type: 'object',
          required: ['code'],
          properties: { code: { type: 'string' }, description: { type: 'string' } },
        },
        Link: {
          type: 'object',
          required: ['href', 'rel'],
          properties: {
            href: { type: 'string' },
            rel: { type: 'string' },
            type: { type: 'string' },
            title: { type: 'string' },
            method: { type: 'string' },
            body: { type: 'object' },
          },
        },
        Catalog: {
          type: 'object',
          required: ['type', 'stac_version', 'id', 'description', 'links', 'conformsTo'],
          properties: {
            type: { type: 'string', enum: ['Catalog'] },
            stac_version: { type: 'string' },
            id: { type: 'string' },
            title: { type: 'string' },
            description: { type: 'string' },
            conformsTo: { type: 'array', items: { type: 'string' } },
            links: { type: 'array', items: ref('Link') },
          },
        },
        Conformance: {
          type: 'object',
          required: ['conformsTo'],
          properties: { conformsTo: { type: 'array', items: { type: 'string' } } },
        },
        Collection: {
          type: 'object',
          description: 'A STAC 1.0.0 Collection',
          required: ['type', 'stac_version', 'id', 'description', 'license', 'extent', 'links'],
          properties: {
            type: { type: 'string', enum: ['Collection'] },
            id: { type: 'string' },
            extent: { type: 'object' },
            links: { type: 'array', items: ref('Link') },
          },
        },
        Collections: {
          type: 'object',
          required: ['collections', 'links'],
          properties: {
            collections: { type: 'array', items: ref('Collection') },
            links: { type: 'array', items: ref('Link') },
          },
        },
        Item: {
          type: 'object',
          description: 'A STAC 1.0.0 Item (GeoJSON Feature)',
          required: ['type', 'stac_version', 'id', 'geometry', 'properties', 'links', 'assets'],
          properties: {
            type: { type: 'string', enum: ['Feature'] },
            id: { type: 'string' },
            collection: { type: 'string' },
          },
        },
        ItemCollection: {
          type: 'object',
          required: ['type', 'features', 'links'],
          properties: {
            type: { type: 'string', enum: ['FeatureCollection'] },
            features: { type: 'array', items: ref('Item') },
            links: { type: 'array', items: ref('Link') },
            numberMatched: { type: 'integer' },
            numberReturned: { type: 'integer' },
          },
        },
        SearchBody: {
          type: 'object',
          properties: {
            collections: { type: 'array', items: { type: 'string' } },
            ids: { type: 'array', items: { type: 'string' } },
            bbox: { type: 'array', minItems: 4, maxItems: 6, items: { type: 'number' } },
            intersects: { type: 'object' },
            datetime: { type: 'string' },
            limit: { type: 'integer', minimum: 1 },
            token: { type: 'string' },
          },
        },
      },
    },
  };
}
