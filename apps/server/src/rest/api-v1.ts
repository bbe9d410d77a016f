/**
 * REST for the jobs API under /api/v1: each operation calls its tRPC procedure (same input
 * schema, same role check, same engine errors), and /api/v1/openapi.json is generated from those
 * procedures' zod schemas and the job types' parameter schemas. /api/v1/docs is a browsable page.
 *
 *   POST /api/v1/jobs                       jobs.submit   GET /api/v1/jobs            jobs.list
 *   GET  /api/v1/jobs/{jobId}               jobs.get      POST …/{jobId}/cancel|retry
 *   GET  /api/v1/jobs/{jobId}/tasks|events  jobs.tasks|events
 *   GET  /api/v1/jobs/{jobId}/stream        jobs.watch (server-sent events)
 *   GET  /api/v1/types                      jobs.types
 *   POST …/{jobId}/rerun                    jobs.rerun    DELETE /api/v1/jobs/{jobId}  jobs.delete
 *   POST /api/v1/purge                      jobs.purge
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CoreMachine } from '@coremachine/core-machine';
import { getTRPCErrorFromUnknown, type TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { z } from 'zod';
import { principalOf } from '../auth/edge.ts';
import { appRouter } from '../router.ts';
import { errorDetails, type Context, type Meta } from '../trpc.ts';
import { baseUrl, HttpError, readJson, sendJson, type RestRoute } from './http.ts';
import { RESPONSES, responseComponents } from './responses.ts';

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema>; required?: string[] };

interface Operation {
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI path under /api/v1, `{jobId}` a path parameter. */
  path: string;
  procedure: string;
  operationId: string;
  summary: string;
  /** Where the procedure's input comes from besides path parameters. */
  from: 'query' | 'body' | 'none';
  stream?: boolean;
}

export const OPERATIONS: Operation[] = [
  {
    method: 'POST',
    path: '/jobs',
    procedure: 'jobs.submit',
    operationId: 'submitJob',
    summary: 'Submit a job: 201 when created, 200 when the same parameters already made this job (idempotent)',
    from: 'body',
  },
  {
    method: 'GET',
    path: '/jobs',
    procedure: 'jobs.list',
    operationId: 'listJobs',
    summary: 'Jobs, newest first, filtered by status, type and creation time; `nextCursor` pages on',
    from: 'query',
  },
  {
    method: 'GET',
    path: '/jobs/{jobId}',
    procedure: 'jobs.get',
    operationId: 'getJob',
    summary: 'A job',
    from: 'none',
  },
  {
    method: 'POST',
    path: '/jobs/{jobId}/cancel',
    procedure: 'jobs.cancel',
    operationId: 'cancelJob',
    summary: 'Cancel a queued or processing job',
    from: 'none',
  },
  {
    method: 'POST',
    path: '/jobs/{jobId}/retry',
    procedure: 'jobs.retry',
    operationId: 'retryJob',
    summary: 'Retry a failed or cancelled job from where it stopped',
    from: 'none',
  },
  {
    method: 'POST',
    path: '/jobs/{jobId}/rerun',
    procedure: 'jobs.rerun',
    operationId: 'rerunJob',
    summary: 'Run a settled job again with the same parameters and id; the run that ended stays in `runs`',
    from: 'none',
  },
  {
    method: 'DELETE',
    path: '/jobs/{jobId}',
    procedure: 'jobs.delete',
    operationId: 'deleteJob',
    summary: 'Delete a settled job with its tasks, events, runs, inventory rows and temporary blobs',
    from: 'none',
  },
  {
    method: 'POST',
    path: '/purge',
    procedure: 'jobs.purge',
    operationId: 'purgeJobs',
    summary: 'Purge settled jobs older than `olderThan` (e.g. `7d`), optionally of some final statuses only',
    from: 'body',
  },
  {
    method: 'GET',
    path: '/jobs/{jobId}/tasks',
    procedure: 'jobs.tasks',
    operationId: 'listJobTasks',
    summary: "A job's tasks by stage and status; `nextCursor` pages on",
    from: 'query',
  },
  {
    method: 'GET',
    path: '/jobs/{jobId}/events',
    procedure: 'jobs.events',
    operationId: 'listJobEvents',
    summary: "A job's timeline, oldest first, after event id `afterId`",
    from: 'query',
  },
  {
    method: 'GET',
    path: '/jobs/{jobId}/stream',
    procedure: 'jobs.watch',
    operationId: 'streamJob',
    summary: 'Server-sent events: `job` (the job) each time it changes, then `end` once it settles',
    from: 'query',
    stream: true,
  },
  {
    method: 'GET',
    path: '/jobs/stream',
    procedure: 'jobs.watchList',
    operationId: 'streamJobList',
    summary: 'Server-sent events: `page` (the same page as GET /jobs) each time one of its jobs changes',
    from: 'query',
    stream: true,
  },
  {
    method: 'GET',
    path: '/job-ids',
    procedure: 'jobs.findIds',
    operationId: 'findJobIds',
    summary: 'Full ids of the jobs whose id starts with `prefix` (resolves short ids)',
    from: 'query',
  },
  {
    method: 'GET',
    path: '/compliance',
    procedure: 'jobs.compliance',
    operationId: 'getCompliance',
    summary: 'Plugin compliance: each job type against the contract elements',
    from: 'none',
  },
  {
    method: 'GET',
    path: '/types',
    procedure: 'jobs.types',
    operationId: 'listJobTypes',
    summary: 'Job types: description, stages and the JSON Schema of their parameters',
    from: 'none',
  },
];

interface ProcedureDef {
  _def: { inputs: unknown[]; meta?: Meta; type: string };
}
const procedures = appRouter._def.procedures as unknown as Record<string, ProcedureDef>;

/** The JSON Schema (2020-12) of a procedure's zod input, as a client sends it. */
function inputSchema(procedure: string): JsonSchema | null {
  const input = procedures[procedure]?._def.inputs[0];
  if (!(input instanceof z.ZodType)) return null;
  const schema = z.toJSONSchema(input, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete schema['$schema'];
  return schema;
}

export const roleOf = (procedure: string): Meta['role'] => procedures[procedure]?._def.meta?.role ?? 'admin';

/** Query strings to the types the input schema wants (numbers, booleans); the procedure validates. */
function fromQuery(url: URL, schema: JsonSchema | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of url.searchParams) {
    if (k === 'access_token') continue;
    const prop = schema?.properties?.[k];
    const types = [prop?.['type'], ...((prop?.['anyOf'] as JsonSchema[] | undefined) ?? []).map((s) => s['type'])];
    if ((types.includes('integer') || types.includes('number')) && v.trim() !== '' && !Number.isNaN(Number(v)))
      out[k] = Number(v);
    else if (types.includes('boolean') && (v === 'true' || v === 'false')) out[k] = v === 'true';
    else out[k] = v;
  }
  return out;
}

function match(op: Operation, parts: string[]): Record<string, string> | null {
  const want = op.path.split('/').filter(Boolean);
  if (want.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w.startsWith('{')) params[w.slice(1, -1)] = decodeURIComponent(parts[i]!);
    else if (w !== parts[i]) return null;
  }
  return params;
}

function sendError(res: ServerResponse, err: TRPCError): true {
  const status = getHTTPStatusCodeFromError(err);
  const { cmCode, issues } = errorDetails(err);
  const message = status >= 500 && !cmCode ? 'internal error (see the server log)' : err.message;
  return sendJson(res, status, { code: err.code, message, cmCode, issues });
}

export function apiV1Routes(deps: { ctx: Context; machine: CoreMachine; version: string }): RestRoute {
  const call = (req: IncomingMessage, procedure: string, input: unknown, signal?: AbortSignal): Promise<unknown> => {
    const caller = appRouter.createCaller({ ...deps.ctx, principal: principalOf(req) }) as unknown as Record<
      string,
      Record<string, (input: unknown, opts?: { signal?: AbortSignal }) => Promise<unknown>>
    >;
    const [group, name] = procedure.split('.') as [string, string];
    return caller[group]![name]!(input, signal ? { signal } : undefined);
  };

  return async (req, res, url) => {
    const path = url.pathname.replace(/\/+$/, '');
    if (path !== '/api/v1' && !path.startsWith('/api/v1/')) return false;
    const method = req.method ?? 'GET';
    if (path === '/api/v1/openapi.json' && method === 'GET')
      return sendJson(res, 200, openApiDocument(deps.machine, deps.version, baseUrl(req, '/api/v1')));
    if ((path === '/api/v1/docs' || path === '/api/v1') && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(DOCS_HTML);
      return true;
    }
    const parts = path.slice('/api/v1'.length).split('/').filter(Boolean);
    const candidates = OPERATIONS.map((op) => [op, match(op, parts)] as const).filter(([, p]) => p);
    if (!candidates.length) return sendJson(res, 404, { code: 'NOT_FOUND', message: `no route ${method} ${path}` });
    // A literal segment wins over a parameter (/jobs/stream before /jobs/{jobId}).
    const found = candidates
      .filter(([op]) => op.method === method)
      .sort(([, a], [, b]) => Object.keys(a!).length - Object.keys(b!).length)[0];
    if (!found) {
      res.setHeader('allow', candidates.map(([op]) => op.method).join(', '));
      return sendJson(res, 405, { code: 'METHOD_NOT_SUPPORTED', message: `${method} is not supported on ${path}` });
    }
    const [op, params] = found;
    let input: unknown;
    try {
      if (op.from === 'body') input = await readJson(req);
      else if (op.from === 'query') input = { ...fromQuery(url, inputSchema(op.procedure)), ...params };
      else input = Object.keys(params!).length ? params : undefined;
    } catch (err) {
      if (err instanceof HttpError) return sendJson(res, err.status, { code: err.code, message: err.message });
      throw err;
    }
    if (op.stream) return stream(req, res, op, input, call);
    try {
      const out = await call(req, op.procedure, input);
      const created = op.procedure === 'jobs.submit' && (out as { idempotent?: boolean }).idempotent === false;
      return sendJson(res, created ? 201 : 200, out);
    } catch (err) {
      return sendError(res, getTRPCErrorFromUnknown(err));
    }
  };
}

async function stream(
  req: IncomingMessage,
  res: ServerResponse,
  op: Operation,
  input: unknown,
  call: (req: IncomingMessage, p: string, input: unknown, signal?: AbortSignal) => Promise<unknown>,
): Promise<true> {
  const abort = new AbortController();
  let iterable: AsyncIterable<unknown>;
  try {
    iterable = (await call(req, op.procedure, input, abort.signal)) as AsyncIterable<unknown>;
  } catch (err) {
    return sendError(res, getTRPCErrorFromUnknown(err));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  res.on('close', () => abort.abort());
  try {
    for await (const value of iterable) {
      if (abort.signal.aborted) break;
      res.write(`event: ${op.procedure === 'jobs.watch' ? 'job' : 'page'}\ndata: ${JSON.stringify(value)}\n\n`);
    }
    if (!abort.signal.aborted) res.write('event: end\ndata: {}\n\n');
  } catch (err) {
    const e = getTRPCErrorFromUnknown(err);
    if (!abort.signal.aborted)
      res.write(`event: error\ndata: ${JSON.stringify({ code: e.code, message: e.message })}\n\n`);
  } finally {
    clearInterval(ping);
    res.end();
  }
  return true;
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', description: 'tRPC error code (BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, ...)' },
    message: { type: 'string' },
    cmCode: { type: ['string', 'null'], description: 'the engine error code (CM_ERR_...)' },
    issues: {
      type: 'array',
      description: 'field errors: the path of each invalid field and why',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: { path: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
};

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** OpenAPI 3.1 from the procedures (zod inputs, roles) and the job types (parameter schemas). */
export function openApiDocument(machine: CoreMachine, version: string, server: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const types = machine.types();
  for (const op of OPERATIONS) {
    const schema = inputSchema(op.procedure);
    const role = roleOf(op.procedure);
    const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const parameters: unknown[] = pathParams.map((name) => ({
      name,
      in: 'path',
      required: true,
      schema: schema?.properties?.[name] ?? { type: 'string' },
    }));
    if (op.from === 'query')
      for (const [name, prop] of Object.entries(schema?.properties ?? {}))
        if (!pathParams.includes(name))
          parameters.push({
            name,
            in: 'query',
            required: schema?.required?.includes(name) && prop['default'] === undefined ? true : false,
            schema: prop,
          });
    const operation: Record<string, unknown> = {
      operationId: op.operationId,
      summary: op.summary,
      description: `tRPC procedure \`${op.procedure}\`. Needs ${role === 'public' ? 'no token' : `a token with role \`${role}\` or above`}.`,
      tags: ['jobs'],
      'x-trpc-procedure': op.procedure,
      'x-required-role': role,
      parameters,
      responses: {
        [op.procedure === 'jobs.submit' ? '201' : '200']: op.stream
          ? {
              description: 'server-sent events: `job` with the job as data, `end` when it settles',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            }
          : {
              description: 'OK',
              content: {
                'application/json': {
                  schema: RESPONSES[op.procedure]
                    ? { $ref: `#/components/schemas/${RESPONSES[op.procedure]!.id}` }
                    : { type: ['object', 'array'] },
                },
              },
            },
        ...(op.procedure === 'jobs.submit'
          ? { '200': { description: 'the job these parameters already made (idempotent: true)' } }
          : {}),
        '400': errorResponse('invalid input: `issues` names each field'),
        '401': errorResponse('no token, or a wrong one'),
        '403': errorResponse('the token has too small a role'),
        ...(pathParams.length ? { '404': errorResponse('no such job') } : {}),
        ...(op.method !== 'GET' && op.from === 'none' ? { '409': errorResponse('not in a state for this') } : {}),
      },
    };
    if (op.from === 'body')
      operation['requestBody'] = {
        required: true,
        content: {
          'application/json': {
            schema: op.procedure === 'jobs.submit' ? { $ref: '#/components/schemas/SubmitRequest' } : (schema ?? {}),
          },
        },
      };
    (paths[op.path] ??= {})[op.method.toLowerCase()] = operation;
  }
  // The body of a submit, one branch per job type, with that type's parameter schema.
  const submit = {
    description: '`type` names the job type; `params` follow its parameter schema (see GET /types)',
    oneOf: types.map((t) => {
      const params = { ...(t.parametersSchema as JsonSchema) };
      delete params['$schema'];
      return {
        title: t.type,
        type: 'object',
        additionalProperties: false,
        required: ['type'],
        properties: { type: { const: t.type, description: t.description }, params },
      };
    }),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'CoreMachine jobs API',
      version,
      description:
        'Submit geospatial ETL jobs and follow them. Every operation is also a tRPC procedure under /trpc. ' +
        'Send `Authorization: Bearer <token>` (tokens from `cm token create`); a server without tokens serves loopback only.',
    },
    servers: [{ url: server }],
    security: [{ bearer: [] }],
    tags: [{ name: 'jobs' }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a CoreMachine API token' } },
      schemas: { ...responseComponents(), Error: ERROR_SCHEMA, SubmitRequest: submit },
    },
  };
}

const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CoreMachine jobs API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem}code,pre{font:13px ui-monospace,monospace}pre{background:#f5f6f8;padding:.6rem;overflow:auto;max-height:24rem}
details{border:1px solid #d8dce1;border-radius:6px;margin:.5rem 0;padding:.4rem .8rem}
summary{cursor:pointer}.m{display:inline-block;width:3.5rem;font-weight:600}.GET{color:#0a6}.POST{color:#06c}.DELETE{color:#c33}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left;vertical-align:top}
</style></head><body>
<h1>CoreMachine jobs API</h1>
<p>Generated from the server's own procedures: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops">Loading…</div>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const body = (schema) => schema.$ref
  ? '<p>Body: <code>' + esc(schema.$ref.split('/').pop()) + '</code> (below)</p>'
  : '<p>Body:</p><pre>' + esc(JSON.stringify(schema, null, 2)) + '</pre>';
fetch('openapi.json').then((r) => r.json()).then((doc) => {
  const out = ['<p>' + esc(doc.info.description) + '</p>'];
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) {
    const params = (op.parameters || []).map((p) => '<tr><td><code>' + esc(p.name) + '</code></td><td>' + esc(p.in) +
      (p.required ? ' (required)' : '') + '</td><td><code>' + esc(JSON.stringify(p.schema)) + '</code></td></tr>').join('');
    out.push('<details><summary><span class="m ' + method.toUpperCase() + '">' + method.toUpperCase() + '</span><code>/api/v1' +
      esc(path) + '</code> — ' + esc(op.summary) + '</summary><p>' + esc(op.description) + '</p>' +
      (params ? '<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>' + params + '</table>' : '') +
      (op.requestBody ? body(op.requestBody.content['application/json'].schema) : '') +
      '<p>Responses: ' + Object.keys(op.responses).map(esc).join(', ') + '</p></details>');
  }
  out.push('<h2>SubmitRequest</h2><pre>' + esc(JSON.stringify(doc.components.schemas.SubmitRequest, null, 2)) + '</pre>');
  document.getElementById('ops').innerHTML = out.join('');
});
</script></body></html>
`;
