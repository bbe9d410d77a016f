/**
 * A process_raster worker process for `bench/cog/run.ts --tiled` (not a test):
 *   node --import tsx bench/cog/tiled-worker.ts <ledger schema>
 * Prints "ready" once it polls; SIGTERM closes it.
 */
import { createTestMachine } from '@coremachine/test-kit';
import processRaster from '../../packages/job-process-raster/src/index.ts';

const schema = process.argv[2];
if (!schema) throw new Error('usage: tiled-worker.ts <schema>');
const tm = await createTestMachine({ plugins: [processRaster], schema, config: { leaseSeconds: 60 } });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void tm.close({ keepSchema: true }).then(() => process.exit(0)));
