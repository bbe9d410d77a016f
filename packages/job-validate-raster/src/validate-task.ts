import { isCoreMachineError, type Services } from '@coremachine/core-machine';
import { gdalTaskError, useStorageForGdal } from '@coremachine/geo';
import { rasterError, validateRaster, type ValidationResult } from '@coremachine/geo/raster';
import { isStorageError, vsiazPath } from '@coremachine/storage';
import { z } from 'zod';
import { validateRasterShape } from './parameters.ts';

/** Input of a `validate` task: the job's validation parameters, defaults applied. */
export const validateInput = z.object(validateRasterShape);
export type ValidateInput = z.output<typeof validateInput>;

/**
 * Runs the five validation checks on a blob, read in place through /vsiaz/. A missing blob or
 * container is BLOB_NOT_FOUND (permanent); storage and network hiccups are retried.
 */
export async function runValidateTask(input: ValidateInput, services: Services): Promise<ValidationResult> {
  const { storage } = services;
  const label = `${input.container_name}/${input.blob_name}`;
  let size: number;
  try {
    const stat = await storage.stat(input.container_name, input.blob_name);
    if (!stat.exists)
      throw rasterError('BLOB_NOT_FOUND', `${label} does not exist; check blob_name and container_name`);
    size = stat.size;
  } catch (err) {
    if (isStorageError(err, 'CONTAINER_NOT_FOUND')) {
      throw rasterError('BLOB_NOT_FOUND', `${label} does not exist: container ${input.container_name} does not exist`);
    }
    throw err;
  }
  useStorageForGdal(storage.config);
  const path = vsiazPath(input.container_name, input.blob_name);
  try {
    return await validateRaster({
      path,
      sourceBlob: input.blob_name,
      containerName: input.container_name,
      rasterType: input.raster_type,
      strictMode: input.strict_mode,
      sizeBytes: size,
      ...(input.input_crs !== undefined ? { inputCrs: input.input_crs } : {}),
    });
  } catch (err) {
    // Anything GDAL threw that validation did not classify: classified here, naming the blob.
    if (isCoreMachineError(err)) throw err;
    throw gdalTaskError(err, { file: label, paths: { [path]: label } });
  }
}
