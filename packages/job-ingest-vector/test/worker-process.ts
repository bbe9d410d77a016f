/**
 * A standalone ingest_vector worker on an existing ledger schema, for the crash test:
 *   node test/worker-process.ts (Node strips the types) <ledger schema> <vector schema>
 * Prints "ready" once its worker is polling; SIGTERM closes it (keeping the ledger).
 */
import { createTestMachine } from '@coremachine/test-kit';
import ingestVector from '../src/index.ts';

const [schema, vschema] = process.argv.slice(2);
if (!schema || !vschema) throw new Error('usage: worker-process.ts <ledger schema> <vector schema>');
// A kill between fetching a message and claiming its task leaves the message with the dead
// worker: the stall backstop (default 300 s) re-sends it; short here so the test stays short.
const tm = await createTestMachine({
  plugins: [ingestVector],
  schema,
  config: { stallSeconds: 5 },
  services: { vector: { schemas: [vschema] } },
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => void tm.close({ keepSchema: true }).then(() => process.exit(0)));
