/**
 * Benchmark (not a test): OGC API Features pages of `items?limit=100` on a 1,000,000-row table
 * (points, as ingest_vector leaves them: bigint key, attributes, GiST index, ANALYZE, stored
 * facts; then VACUUM and CHECKPOINT, so that no page is measured while the build's dirty buffers
 * are written or its hint bits set), next to the same SELECT ... LIMIT 100 (the page's rows and
 * columns, no JSON) run directly in PostgreSQL over one connection, and the statement the route
 * ran for that page (recorded from its pool, run again over that connection). Three pages: the
 * first, a deep one (the rows after the 500,000th, reached by following the `next` link of the
 * page before it) and a bbox page. The deep page has two plain baselines: `OFFSET 500000` and the
 * keyset form `WHERE fid > 500000` (what its `next` link asks for, and what the route runs).
 *
 * Each round runs one request of the page and one of each SELECT, in a rotating order, so that a
 * change of load on the machine weighs on all of them alike. Prints p50/p95 of each over
 * `--requests N` rounds (after a warm-up) and the ratios of the p50s (target <= 1.5x). Then the
 * first page with `--concurrency C` clients at once (C HTTP connections to the route, whose pool
 * has C connections, against C connections running the plain SELECT): latency p50/p95 and
 * throughput.
 *
 *   source scripts/env.sh && cd bench && node --import tsx features/run.ts [--rows 1000000] [--requests 50] [--concurrency 4]
 *
 * Needs PostgreSQL (DATABASE_URL) with PostGIS.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import pg from 'pg';
import { DATABASE_URL } from '@coremachine/test-kit';
import { factsComment } from '@coremachine/geo/vector';
import { featuresRoutes } from '../../apps/server/src/rest/features.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROWS = arg('rows', 1_000_000);
const REQUESTS = arg('requests', 50);
const CONCURRENCY = arg('concurrency', 4);
const WARMUP = 5;
const schema = `bench_features_${randomBytes(3).toString('hex')}`;
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** Runs each of `fs` once per round (first the i-th, then the next ones, for round i), timed. */
async function rounds(n: number, fs: (() => Promise<unknown>)[]): Promise<number[][]> {
  const out = fs.map(() => [] as number[]);
  for (let r = 0; r < n + WARMUP; r++)
    for (let j = 0; j < fs.length; j++) {
      const i = (r + j) % fs.length;
      const t0 = performance.now();
      await fs[i]!();
      if (r >= WARMUP) out[i]!.push(performance.now() - t0);
    }
  return out;
}

/** `workers` loops running `f` until `n` calls are made in all: latencies and calls per second. */
async function concurrent(workers: number, n: number, f: (w: number) => Promise<unknown>) {
  for (let w = 0; w < workers; w++) for (let i = 0; i < WARMUP; i++) await f(w);
  const times: number[] = [];
  let left = n;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (left-- > 0) {
        const t = performance.now();
        await f(w);
        times.push(performance.now() - t);
      }
    }),
  );
  return { times, perSecond: (n / (performance.now() - t0)) * 1000 };
}

async function main(): Promise<void> {
  // The route's pool; the SELECTs run directly have connections of their own.
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: Math.max(4, CONCURRENCY) });
  const direct = new pg.Pool({ connectionString: DATABASE_URL, max: Math.max(1, CONCURRENCY) });
  console.log(`building ${ROWS} points in ${schema}.pts ...`);
  const t0 = performance.now();
  await pool.query(`create schema "${schema}";
    create table "${schema}".pts (fid bigint primary key, name text, value double precision, day date, geom geometry(Point, 4326) not null);
    insert into "${schema}".pts select i, 'feature ' || i, i * 0.37, date '2020-01-01' + (i % 1000),
      st_setsrid(st_makepoint(((i * 0.0137) % 360) - 180, ((i * 0.0071) % 170) - 85), 4326) from generate_series(1, ${ROWS}) i;
    create index on "${schema}".pts using gist (geom);
    analyze "${schema}".pts`);
  const {
    rows: [e],
  } = await pool.query(
    `select st_xmin(x) a, st_ymin(x) b, st_xmax(x) c, st_ymax(x) d from (select st_extent(geom) x from "${schema}".pts) s`,
  );
  await pool.query(
    `comment on table "${schema}".pts is '${factsComment({ job: 'bench', rows: ROWS, bbox: [e.a, e.b, e.c, e.d], loaded_at: new Date().toISOString() })}'`,
  );
  await pool.query(`vacuum "${schema}".pts`);
  await pool.query('checkpoint');
  console.log(`built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // The route's pool, recording each statement the route runs (the route's own SELECT is then
  // the one it really ran, prepared or not).
  let recorded: (string | pg.QueryConfig)[] = [];
  const recording = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return (q: string | pg.QueryConfig, values?: unknown[]) => {
        recorded.push(typeof q === 'string' && values ? { text: q, values } : q);
        return typeof q === 'string' ? target.query(q, values) : target.query(q);
      };
    },
  });
  const features = featuresRoutes({ pool: recording, schemas: [schema] });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    void features(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/features/collections/pts/items`;
  const agents = Array.from(
    { length: Math.max(1, CONCURRENCY) },
    () => new http.Agent({ keepAlive: true, maxSockets: 1 }),
  );
  const get = (url: string, agent = agents[0]!) =>
    new Promise<string>((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () =>
            res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode} ${body}`)),
          );
        })
        .on('error', reject);
    });

  // The deep page's URL is the `next` link of the page before it.
  const half = Math.floor(ROWS / 2);
  const before = JSON.parse(await get(`${base}?limit=100&offset=${half - 100}`)) as {
    links: { rel: string; href: string }[];
  };
  const deep = before.links.find((l) => l.rel === 'next')!.href;
  const bbox = '10,10,20,20';
  const select = `select t.fid, t.name, t.value, t.day, t.geom from "${schema}".pts t`;
  const box = `t.geom && st_makeenvelope(10, 10, 20, 20, 4326) and st_intersects(t.geom, st_makeenvelope(10, 10, 20, 20, 4326))`;
  const firstSql = `${select} order by t.fid limit 100`;
  const cases = [
    { name: 'first page', url: `${base}?limit=100`, sql: [firstSql] },
    {
      name: `deep page (${new URL(deep).search}, by next link)`,
      url: deep,
      sql: [
        `${select} order by t.fid limit 100 offset ${half}`,
        `${select} where t.fid > ${half} order by t.fid limit 100`,
      ],
    },
    {
      name: `bbox page (${bbox})`,
      url: `${base}?limit=100&bbox=${bbox}`,
      sql: [`${select} where ${box} order by t.fid limit 100`],
    },
  ];
  const client = await direct.connect();
  console.log(`load average at start: ${load()}`);
  console.log(`\n${REQUESTS} rounds (after ${WARMUP} warm-up), one request of each per round, milliseconds:`);
  console.log('page | /features p50 | p95 | plain SELECT p50 | p95 | ratio p50 | route SELECT p50 | p95 | ratio p50');
  const f = (xs: number[]) => `${pct(xs, 50).toFixed(2)} | ${pct(xs, 95).toFixed(2)}`;
  for (const c of cases) {
    await get(c.url);
    recorded = [];
    await get(c.url);
    // The statement of the page (the one returning the features: the last one it ran).
    const route = recorded.at(-1)!;
    const statements = recorded.length;
    const [ours, routeTimes, ...direct] = await rounds(REQUESTS, [
      () => get(c.url),
      () => (typeof route === 'string' ? client.query(route) : client.query(route)),
      ...c.sql.map((sql) => () => client.query(sql)),
    ]);
    c.sql.forEach((sql, i) => {
      const plain = direct[i]!;
      console.log(
        `${c.name}${c.sql.length > 1 ? ` vs ${/offset/.test(sql) ? 'OFFSET' : 'keyset'}` : ''} | ${f(ours!)} | ${f(plain)} | ${(pct(ours!, 50) / pct(plain, 50)).toFixed(2)}x | ${f(routeTimes!)} | ${(pct(ours!, 50) / pct(routeTimes!, 50)).toFixed(2)}x`,
      );
    });
    console.log(`  statements run per request: ${statements}; load average ${load()}`);
  }

  if (CONCURRENCY > 1) {
    const n = REQUESTS * CONCURRENCY;
    const clients = [client, ...(await Promise.all(Array.from({ length: CONCURRENCY - 1 }, () => direct.connect())))];
    console.log(`\nfirst page, ${CONCURRENCY} clients at once, ${n} requests in all (after warm-up), milliseconds:`);
    console.log('client | p50 | p95 | requests/s');
    const plain = await concurrent(CONCURRENCY, n, (w) => clients[w]!.query(firstSql));
    const ours = await concurrent(CONCURRENCY, n, (w) => get(cases[0]!.url, agents[w]!));
    const again = await concurrent(CONCURRENCY, n, (w) => clients[w]!.query(firstSql));
    for (const [name, r] of [
      ['plain SELECT', plain],
      ['/features', ours],
      ['plain SELECT (again)', again],
    ] as const)
      console.log(`${name} | ${f(r.times)} | ${r.perSecond.toFixed(0)}`);
    const both = [...plain.times, ...again.times];
    console.log(
      `ratio p50 ${(pct(ours.times, 50) / pct(both, 50)).toFixed(2)}x, throughput ${(ours.perSecond / ((plain.perSecond + again.perSecond) / 2)).toFixed(2)}x; load average ${load()}`,
    );
    for (const c of clients.slice(1)) c.release();
  }
  client.release();
  for (const a of agents) a.destroy();
  server.close();
  await pool.query(`drop schema "${schema}" cascade`);
  await pool.end();
  await direct.end();
}

await main();
