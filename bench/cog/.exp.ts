import gdal from 'gdal-async';
import { makeInput } from './make-input.ts';
const mode = process.argv[2];
const input = '/tmp/cm-exp/input.tif';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
mkdirSync('/tmp/cm-exp', { recursive: true });
if (!existsSync(input)) makeInput(input, 6000);
gdal.config.set('GDAL_CACHEMAX', '256');
const t0 = performance.now();
const src = await gdal.openAsync(input);
const warpArgs = ['-of','GTiff','-t_srs','EPSG:4326','-r','cubic','-multi','-wo','NUM_THREADS=ALL_CPUS','-wm','128','-co','TILED=YES','-co','BLOCKXSIZE=512','-co','BLOCKYSIZE=512','-co','BIGTIFF=IF_SAFER'];
let w = await gdal.warpAsync('/tmp/cm-exp/w.tif', null, [src], warpArgs);
const t1 = performance.now();
if (mode === 'reopen') { w.close(); w = await gdal.openAsync('/tmp/cm-exp/w.tif'); }
const t2 = performance.now();
const out = await gdal.translateAsync('/tmp/cm-exp/o.tif', w, ['-of','COG','-co','COMPRESS=JPEG','-co','QUALITY=85','-co','BLOCKSIZE=512','-co','OVERVIEW_RESAMPLING=CUBIC','-co','NUM_THREADS=ALL_CPUS','-co','BIGTIFF=IF_SAFER']);
out.close();
const t3 = performance.now();
console.log(mode, 'warp', ((t1-t0)/1000).toFixed(1), 'close/reopen', ((t2-t1)/1000).toFixed(1), 'cog', ((t3-t2)/1000).toFixed(1), 'rss', (process.resourceUsage().maxRSS/1024).toFixed(0), 'MB', 'cachemax', gdal.config.get('GDAL_CACHEMAX'));
