import { randomBytes } from 'node:crypto';
import { createPool, type Pool } from '@coremachine/core-machine';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/coremachine';

/** A pool plus a fresh schema name; `drop()` removes every schema created through `schema()`. */
export function testDb(prefix: string): { pool: Pool; schema: (tag?: string) => string; drop: () => Promise<void> } {
  const pool = createPool(DATABASE_URL, 4);
  const made: string[] = [];
  return {
    pool,
    schema: (tag = '') => {
      const s = `${prefix}${tag}_${randomBytes(4).toString('hex')}`;
      made.push(s);
      return s;
    },
    drop: async () => {
      for (const s of made) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await pool.end();
    },
  };
}
