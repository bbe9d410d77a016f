/**
 * A worker process for process_raster on an existing ledger schema, for the kill test:
 *   node --import tsx test/worker-process.ts <schema>
 * Prints "ready" once its worker is polling.
 */
import { createTestMachine } from '@coremachine/test-kit';
import processRaster from '../src/index.ts';

const schema = process.argv[2];
if (!schema) throw new Error('usage: worker-process.ts <schema>');
const tm = await createTestMachine({ plugins: [processRaster], schema });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void tm.close({ keepSchema: true }).then(() => process.exit(0)));
