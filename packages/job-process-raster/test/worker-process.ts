/**
 * A worker process for process_raster on an existing ledger schema, for the kill test:
 *   node --import tsx test/worker-process.ts <schema> [--held]
 * Prints "started" once its machine is up (modules loaded, migrations checked, queue started)
 * and "ready" once its worker is polling. With --held it starts its worker only when a line
 * arrives on stdin: the slow part of a start (loading and transpiling the modules) is then done
 * before the test needs the worker.
 */
import { createInterface } from 'node:readline';
import { createTestMachine } from '@coremachine/test-kit';
import processRaster from '../src/index.ts';

const schema = process.argv[2];
if (!schema) throw new Error('usage: worker-process.ts <schema> [--held]');
const held = process.argv.includes('--held');
const tm = await createTestMachine({ plugins: [processRaster], schema, worker: !held });
process.stdout.write('started\n');
if (held) {
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  await tm.machine.startWorker();
}
process.stdout.write('ready\n');
process.on('SIGTERM', () => void tm.close({ keepSchema: true }).then(() => process.exit(0)));
