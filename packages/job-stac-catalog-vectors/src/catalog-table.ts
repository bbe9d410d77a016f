import { defineStage, permanentError } from '@coremachine/core-machine';
import { buildVectorItem, getItem, StacError, upsertItem, vectorItemId } from '@coremachine/geo/stac';
import { featuresCollectionId } from '@coremachine/geo/vector';
import { z } from 'zod';
import type { Params } from './parameters.ts';

const stage = defineStage<Params>();

export const catalogOutput = z.object({
  item_id: z.string(),
  inserted: z.boolean(),
  row_count: z.number().int(),
  geometry_types: z.array(z.string()),
  srid: z.number().int(),
  bbox: z.array(z.number()),
  datetime: z.string().nullable(),
  features_href: z.string().nullable(),
});

/** The one stage: build, validate and upsert the item of one PostGIS table. */
export const catalogTable = stage({
  name: 'catalog_table',
  description: 'Builds the STAC item of one PostGIS table (bbox in WGS84, row count, geometry types) and upserts it',
  input: z.object({ schema: z.string(), table_name: z.string(), collection_id: z.string() }),
  output: catalogOutput,
  plan: ({ params }) => [
    {
      key: `catalog_${params.schema}_${params.table_name}`,
      input: { schema: params.schema, table_name: params.table_name, collection_id: params.collection_id },
    },
  ],
  handler: async (input, ctx) => {
    const stac = ctx.services.stac;
    try {
      const previous = await getItem(
        ctx.db,
        stac.schema,
        input.collection_id,
        vectorItemId(input.schema, input.table_name),
      );
      // The server's /features serves every schema of CM_GEO_SCHEMAS (its own first), ids
      // qualified where names clash: the same rule gives the link.
      const vectorSchemas = (ctx.services as { vector?: { schemas: readonly string[] } }).vector?.schemas ?? [];
      const served = [...new Set([...(stac.featuresSchema ? [stac.featuresSchema] : []), ...vectorSchemas])];
      const collectionId = await featuresCollectionId(
        ctx.db,
        served.length ? served : ['geo'],
        input.schema,
        input.table_name,
      );
      const featuresHref =
        collectionId === null ? undefined : `/features/collections/${encodeURIComponent(collectionId)}`;
      const item = await buildVectorItem(ctx.db, {
        schema: input.schema,
        table: input.table_name,
        collection: input.collection_id,
        ...(featuresHref ? { featuresHref } : {}),
        ...(ctx.params.datetime ? { datetime: ctx.params.datetime } : {}),
        previousDatetime: previous?.properties.datetime ?? null,
        ...(ctx.params.source_file ? { properties: { 'coremachine:source_file': ctx.params.source_file } } : {}),
      });
      const written = await upsertItem(ctx.db, stac.schema, item);
      return {
        item_id: item.id,
        inserted: written.inserted,
        row_count: item.properties['postgis:row_count'] as number,
        geometry_types: item.properties['postgis:geometry_types'] as string[],
        srid: item.properties['postgis:srid'] as number,
        bbox: item.bbox ?? [],
        datetime: item.properties.datetime ?? item.properties.start_datetime ?? null,
        features_href: featuresHref ?? null,
      };
    } catch (err) {
      if (err instanceof StacError)
        throw permanentError(err.code, err.message, err.issues.length ? { issues: err.issues } : undefined);
      throw err;
    }
  },
});
