import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createStorage, ensureAzurite, ensureContainers, probePort } from '../src/index.ts';

// A private port so this does not disturb the shared instance on 10000.
const PORT = 10_000 + 100 + (process.pid % 800);

describe('ensureAzurite', () => {
  it('starts one instance for concurrent callers and stops it when the last handle is released', async () => {
    const location = await mkdtemp(join(tmpdir(), 'cm-azurite-'));
    expect(await probePort(PORT)).toBe(false);
    const [a, b] = await Promise.all([
      ensureAzurite({ port: PORT, location }),
      ensureAzurite({ port: PORT, location }),
    ]);
    expect([a.started, b.started].filter(Boolean)).toHaveLength(1);
    const owner = a.started ? a : b;
    const other = a.started ? b : a;
    expect(owner.endpoint).toBe(`http://127.0.0.1:${PORT}/devstoreaccount1`);
    expect(other.pid).toBe(owner.pid);

    const storage = createStorage({ kind: 'azurite', endpoint: owner.endpoint });
    expect(await ensureContainers(storage, ['bronze', 'silver'])).toEqual(['bronze', 'silver']);
    expect(await ensureContainers(storage, ['bronze', 'silver', 'gold'])).toEqual(['gold']);

    // The starter leaving first does not pull Azurite from under the others.
    await owner.stop();
    expect(await probePort(PORT)).toBe(true);
    const late = await ensureAzurite({ port: PORT, location });
    expect(late.started).toBe(false);
    await other.stop();
    expect(await probePort(PORT)).toBe(true);
    await late.stop();
    expect(await probePort(PORT)).toBe(false);
  });
});
