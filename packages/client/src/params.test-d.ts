/**
 * The typed client's submit input is each job type's real parameter types: one wrong-type
 * parameter per job type must not compile (each `@ts-expect-error` fails the type test if the
 * line compiles), and `params` is required when the type has required parameters.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createClient, type SubmitInput } from './index.ts';

const cm = createClient({ url: 'http://127.0.0.1:1' });
type ParamsOf<T extends SubmitInput['type']> = NonNullable<Extract<SubmitInput, { type: T }>['params']>;

describe('submit parameters per job type', () => {
  it('hello_world: n is a number (its numeric-text coercion is not an input type)', () => {
    expectTypeOf<ParamsOf<'hello_world'>['n']>().toEqualTypeOf<number | undefined>();
    void (() => cm.jobs.submit.mutate({ type: 'hello_world' })); // every parameter has a default
    void (() => cm.jobs.submit.mutate({ type: 'hello_world', params: { n: 10, message: 'hi', failure_rate: 0.5 } }));
    // @ts-expect-error n must be a number, not text
    void (() => cm.jobs.submit.mutate({ type: 'hello_world', params: { n: 'ten' } }));
    // @ts-expect-error n must be a number, not an object
    void (() => cm.jobs.submit.mutate({ type: 'hello_world', params: { n: { nested: true } } }));
    // @ts-expect-error no such parameter
    void (() => cm.jobs.submit.mutate({ type: 'hello_world', params: { m: 1 } }));
  });

  it('ingest_vector: blob_name and table_name are required strings', () => {
    void (() => cm.jobs.submit.mutate({ type: 'ingest_vector', params: { blob_name: 'a.gpkg', table_name: 'a' } }));
    // @ts-expect-error params are required (blob_name, table_name)
    void (() => cm.jobs.submit.mutate({ type: 'ingest_vector' }));
    // @ts-expect-error blob_name must be a string
    void (() => cm.jobs.submit.mutate({ type: 'ingest_vector', params: { blob_name: 42, table_name: 'a' } }));
    void (() =>
      // @ts-expect-error chunk_size is "auto" or a number
      cm.jobs.submit.mutate({ type: 'ingest_vector', params: { blob_name: 'a', table_name: 'a', chunk_size: 'big' } }));
  });

  it('list_container_contents: container_name is a required string', () => {
    void (() => cm.jobs.submit.mutate({ type: 'list_container_contents', params: { container_name: 'bronze' } }));
    // @ts-expect-error container_name must be a string
    void (() => cm.jobs.submit.mutate({ type: 'list_container_contents', params: { container_name: 1 } }));
    // @ts-expect-error params are required
    void (() => cm.jobs.submit.mutate({ type: 'list_container_contents' }));
  });

  it('process_raster: raster_type is one of its names', () => {
    void (() =>
      cm.jobs.submit.mutate({ type: 'process_raster', params: { blob_name: 'dem.tif', raster_type: 'dem' } }));
    void (() =>
      // @ts-expect-error raster_type must be one of the known types
      cm.jobs.submit.mutate({ type: 'process_raster', params: { blob_name: 'dem.tif', raster_type: 'bogus' } }));
  });

  it('stac_catalog_container: batch_size is a number', () => {
    void (() =>
      cm.jobs.submit.mutate({ type: 'stac_catalog_container', params: { container_name: 'silver', batch_size: 50 } }));
    void (() =>
      cm.jobs.submit.mutate({
        type: 'stac_catalog_container',
        // @ts-expect-error batch_size must be a number
        params: { container_name: 'silver', batch_size: '50' },
      }));
  });

  it('stac_catalog_vectors: table_name is a required string', () => {
    void (() => cm.jobs.submit.mutate({ type: 'stac_catalog_vectors', params: { table_name: 'roads' } }));
    // @ts-expect-error table_name must be a string
    void (() => cm.jobs.submit.mutate({ type: 'stac_catalog_vectors', params: { table_name: 5 } }));
  });

  it('summarize_container: container_name is a string', () => {
    void (() => cm.jobs.submit.mutate({ type: 'summarize_container', params: { container_name: 'bronze' } }));
    // @ts-expect-error container_name must be a string
    void (() => cm.jobs.submit.mutate({ type: 'summarize_container', params: { container_name: ['bronze'] } }));
  });

  it('validate_raster: strict_mode is a boolean', () => {
    void (() => cm.jobs.submit.mutate({ type: 'validate_raster', params: { blob_name: 'a.tif', strict_mode: true } }));
    // @ts-expect-error strict_mode must be a boolean
    void (() => cm.jobs.submit.mutate({ type: 'validate_raster', params: { blob_name: 'a.tif', strict_mode: 'yes' } }));
    // @ts-expect-error blob_name is required
    void (() => cm.jobs.submit.mutate({ type: 'validate_raster', params: {} }));
  });
});
