/** A soak worker process: DATABASE_URL=... node --import tsx soak/worker.ts <schema> */
import { CoreMachine, createLogger } from '@coremachine/core-machine';
import { soakJob } from './jobs.ts';

process.on('uncaughtException', (err) => {
  process.stderr.write(`UNCAUGHT ${err.stack ?? String(err)}\n`);
  process.exit(70);
});
const schema = process.argv[2]!;
const machine = await CoreMachine.start({
  connectionString: process.env['DATABASE_URL']!,
  plugins: [soakJob],
  config: { schema, leaseSeconds: 5, sweepIntervalMs: 1_000, stallSeconds: 20, queueSuperviseSeconds: 2 },
  log: createLogger('error', { pid: process.pid }),
});
const worker = await machine.startWorker();
process.stdout.write(`ready ${worker.id}\n`);
let terms = 0;
process.on('SIGTERM', () => {
  if (++terms > 1) process.exit(1);
  void worker
    .shutdown()
    .then(() => machine.close())
    .then(() => process.exit(0));
});
