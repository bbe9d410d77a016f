import { containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

const mb = z.coerce.number().min(0);

const tiledConfigSchema = z.object({
  /** Sources at or above this many MB uncompressed (width × height × bands × sample size) are tiled. */
  CM_RASTER_TILED_THRESHOLD_MB: mb.default(1024),
  /** Side of a window in pixels (a multiple of 64). */
  CM_RASTER_WINDOW_PX: z.coerce.number().int().min(64).max(16384).multipleOf(64).default(4096),
  /**
   * Local disk a window task may use, MB: the window (written lossless, at most its uncompressed
   * size) must fit, so the window side shrinks until it does.
   */
  CM_RASTER_TASK_DISK_MB: mb.default(1024),
  /** gdalwarp working memory per window task (-wm), MB. */
  CM_RASTER_WARP_MEMORY_MB: z.coerce.number().int().min(16).max(1024).default(128),
  /** Container holding the temporary windows of tiled jobs (`<job type>/<job id>/<window>.tif`). */
  CM_RASTER_TMP_CONTAINER: containerNameSchema.default('cm-tmp'),
});

export interface TiledConfig {
  thresholdMb: number;
  windowPx: number;
  taskDiskMb: number;
  warpMemoryMb: number;
  tmpContainer: string;
}

/** The tiled-path settings from the environment (read on each call: tests and operators may change them). */
export function tiledConfig(env: Record<string, string | undefined> = process.env): TiledConfig {
  const picked = Object.fromEntries(Object.keys(tiledConfigSchema.shape).flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
  const c = tiledConfigSchema.parse(picked);
  return {
    thresholdMb: c.CM_RASTER_TILED_THRESHOLD_MB,
    windowPx: c.CM_RASTER_WINDOW_PX,
    taskDiskMb: c.CM_RASTER_TASK_DISK_MB,
    warpMemoryMb: c.CM_RASTER_WARP_MEMORY_MB,
    tmpContainer: c.CM_RASTER_TMP_CONTAINER,
  };
}
