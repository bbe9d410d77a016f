/**
 * The process_raster COG path on a local file, as a child process so that its peak RSS is
 * measured on its own: validate -> createCog (warp + COG driver) -> COG layout check.
 * Usage: node bench/cog/ours.ts <input.tif> <output.tif> <workdir>
 */
import { configureGdal } from '@coremachine/geo';
import { checkCog, createCog, validateRaster } from '@coremachine/geo/raster';

const [input, output, workDir] = process.argv.slice(2) as [string, string, string];
configureGdal();
const t0 = performance.now();
const v = await validateRaster({ path: input, sourceBlob: input, containerName: 'local' });
const t1 = performance.now();
const s = v.raster_type.optimal_cog_settings;
await createCog({
  source: input,
  destination: output,
  workDir,
  sourceCrs: v.source_crs,
  targetCrs: 'EPSG:4326',
  compression: s.compression,
  quality: s.jpeg_quality,
  overviewResampling: s.overview_resampling,
  reprojectResampling: s.reproject_resampling,
});
const t2 = performance.now();
const check = await checkCog(output);
if (!check.valid) throw new Error(`not a valid COG: ${check.errors.join('; ')}`);
const t3 = performance.now();
process.stdout.write(
  JSON.stringify({
    type: v.raster_type.detected_type,
    compression: s.compression,
    validate_s: (t1 - t0) / 1000,
    cog_s: (t2 - t1) / 1000,
    check_s: (t3 - t2) / 1000,
    overviews: check.overviewLevels,
  }) + '\n',
);
