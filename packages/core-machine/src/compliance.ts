import { z } from 'zod';
import { CONTRACT_VERSION, PLUGIN_KIND, type AnyJobDefinition, type Services } from './define-job.ts';
import { CoreMachineError } from './errors.ts';

/** The plugin contract's elements, one compliance row each, met or not. */
export const CONTRACT_ELEMENTS = [
  'manifest',
  'type',
  'version',
  'description',
  'validate_job_parameters',
  'generate_job_id',
  'stages',
  'create_tasks_for_stage',
  'task_handlers',
  'create_job_record',
  'queue_job',
  'aggregate_job_results',
] as const;
export type ContractElement = (typeof CONTRACT_ELEMENTS)[number];

export interface ComplianceProblem {
  element: ContractElement;
  message: string;
}

export interface ComplianceReport {
  packageName: string;
  type: string | null;
  version: string | null;
  stages: string[];
  compliant: boolean;
  problems: ComplianceProblem[];
}

const isFn = (v: unknown) => typeof v === 'function';
const isZod = (v: unknown): v is z.ZodType => !!v && typeof (v as z.ZodType).safeParse === 'function';
const describe = (v: unknown) =>
  v === undefined ? 'undefined' : v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;

function jsonSchemaProblem(schema: z.ZodType, what: string): string | null {
  try {
    z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
    return null;
  } catch (err) {
    return `${what} cannot be converted to JSON Schema: ${(err as Error).message}`;
  }
}

/**
 * Checks one plugin export against the contract. Never throws: every problem becomes a row,
 * named after the contract element and saying what was expected and what was found.
 */
export function checkCompliance(packageName: string, manifest: unknown): ComplianceReport {
  const problems: ComplianceProblem[] = [];
  const add = (element: ContractElement, message: string) => problems.push({ element, message });
  const m = (manifest ?? {}) as Partial<AnyJobDefinition> & Record<string, unknown>;

  if (!manifest || typeof manifest !== 'object') {
    add('manifest', `expected the default export to be defineJob({...}), received ${describe(manifest)}`);
    return { packageName, type: null, version: null, stages: [], compliant: false, problems };
  }
  if (m.kind !== PLUGIN_KIND)
    add('manifest', `expected kind '${PLUGIN_KIND}' (build it with defineJob), received ${JSON.stringify(m.kind)}`);
  if (m.contractVersion !== CONTRACT_VERSION)
    add('manifest', `expected contractVersion ${CONTRACT_VERSION}, received ${JSON.stringify(m.contractVersion)}`);
  if (typeof m.type !== 'string' || !/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(m.type))
    add('type', `expected a snake_case string such as 'hello_world', received ${JSON.stringify(m.type)}`);
  if (typeof m.version !== 'string' || !m.version)
    add('version', `expected a version string, received ${describe(m.version)}`);
  if (typeof m.description !== 'string' || !m.description)
    add('description', `expected a non-empty description, received ${describe(m.description)}`);

  if (!isZod(m.parameters))
    add('validate_job_parameters', `expected 'parameters' to be a zod schema, received ${describe(m.parameters)}`);
  else {
    const p = jsonSchemaProblem(m.parameters, "'parameters'");
    if (p) add('validate_job_parameters', p);
  }
  if (m.generateJobId !== undefined && !isFn(m.generateJobId))
    add(
      'generate_job_id',
      `expected 'generateJobId' to be a function or absent, received ${describe(m.generateJobId)}`,
    );
  if (m.idExcludeKeys !== undefined && !Array.isArray(m.idExcludeKeys))
    add(
      'generate_job_id',
      `expected 'idExcludeKeys' to be an array of parameter names, received ${describe(m.idExcludeKeys)}`,
    );

  const stageNames: string[] = [];
  if (!Array.isArray(m.stages) || m.stages.length === 0) {
    add(
      'stages',
      `expected a non-empty array of stages, received ${Array.isArray(m.stages) ? 'an empty array' : describe(m.stages)}`,
    );
  } else {
    m.stages.forEach((s, i) => {
      const label = `stage ${i + 1}${s && typeof s.name === 'string' ? ` '${s.name}'` : ''}`;
      if (!s || typeof s !== 'object')
        return add('stages', `${label}: expected defineStage({...}), received ${describe(s)}`);
      if (typeof s.name !== 'string' || !/^[a-z][a-z0-9_]*$/.test(s.name))
        add('stages', `${label}: expected a snake_case 'name', received ${JSON.stringify(s.name)}`);
      else if (stageNames.includes(s.name)) add('stages', `${label}: duplicate stage name '${s.name}'`);
      else stageNames.push(s.name);
      if (!isFn(s.plan))
        add('create_tasks_for_stage', `${label}: expected 'plan' to be a function, received ${describe(s.plan)}`);
      if (!isFn(s.handler))
        add('task_handlers', `${label}: expected 'handler' to be a function, received ${describe(s.handler)}`);
      if (!isZod(s.input))
        add('task_handlers', `${label}: expected 'input' to be a zod schema, received ${describe(s.input)}`);
      if (!isZod(s.output))
        add('task_handlers', `${label}: expected 'output' to be a zod schema, received ${describe(s.output)}`);
      if (s.onTaskFailure !== undefined && s.onTaskFailure !== 'fail_job' && s.onTaskFailure !== 'continue')
        add(
          'stages',
          `${label}: 'onTaskFailure' must be 'fail_job' or 'continue', received ${JSON.stringify(s.onTaskFailure)}`,
        );
    });
  }
  if (!isFn(m.aggregate))
    add('aggregate_job_results', `expected 'aggregate' to be a function, received ${describe(m.aggregate)}`);
  if (!isZod(m.result))
    add('aggregate_job_results', `expected 'result' to be a zod schema, received ${describe(m.result)}`);

  return {
    packageName,
    type: typeof m.type === 'string' ? m.type : null,
    version: typeof m.version === 'string' ? m.version : null,
    stages: stageNames,
    compliant: problems.length === 0,
    problems,
  };
}

/** Adds duplicate-type problems across reports (a type must belong to one package). */
export function checkUniqueTypes(reports: ComplianceReport[]): void {
  const owners = new Map<string, string>();
  for (const r of reports) {
    if (!r.type) continue;
    const first = owners.get(r.type);
    if (first) {
      r.problems.push({ element: 'type', message: `duplicate job type '${r.type}': already declared by ${first}` });
      r.compliant = false;
    } else owners.set(r.type, r.packageName);
  }
}

/** Throws the load-time error that stops the server, naming each package and element. */
export function assertCompliant(reports: ComplianceReport[]): void {
  const bad = reports.filter((r) => !r.compliant);
  if (!bad.length) return;
  const lines = bad.flatMap((r) =>
    r.problems.map((p) => `  ${r.packageName}${r.type ? ` (${r.type})` : ''}: ${p.element}: ${p.message}`),
  );
  const code = bad.some((r) => r.problems.some((p) => p.element === 'type' && p.message.startsWith('duplicate')))
    ? 'CM_ERR_PLUGIN_DUPLICATE_TYPE'
    : 'CM_ERR_PLUGIN_MISSING_ELEMENT';
  throw new CoreMachineError(
    code,
    `Non-compliant job plugin${bad.length > 1 ? 's' : ''}, refusing to start:\n${lines.join('\n')}`,
  );
}

/** The ✅/❌ compliance table, one row per plugin. */
export function formatComplianceTable(reports: ComplianceReport[]): string {
  const rows = reports.map((r) => {
    const missing = [...new Set(r.problems.map((p) => p.element))];
    return `| \`${r.type ?? '?'}\` | ${r.packageName} | ${r.compliant ? '✅' : '❌'} | ${missing.length ? missing.map((e) => `\`${e}\``).join(', ') : 'None'} |`;
  });
  const ok = reports.filter((r) => r.compliant).length;
  const pct = reports.length ? ((ok / reports.length) * 100).toFixed(1) : '0.0';
  return [
    `${ok === reports.length ? '✅' : '⚠️'} ${ok}/${reports.length} jobs compliant (${pct}%)`,
    '',
    '| Job Type | Package | Status | Missing Elements |',
    '|----------|---------|--------|------------------|',
    ...rows,
  ].join('\n');
}

/** Every service a plugin declares (`services: ['storage']`) must be supplied. */
export function assertServices(plugins: AnyJobDefinition[], services: Partial<Services>): void {
  const missing = plugins.flatMap((p) =>
    (p.services ?? [])
      .filter((name) => (services as Record<string, unknown>)[name] === undefined)
      .map((name) => `${p.type} needs service '${name}'`),
  );
  if (missing.length)
    throw new CoreMachineError(
      'CM_ERR_SERVICE_MISSING',
      `Missing services: ${missing.join('; ')}. Supply them in CoreMachine.start({ services }).`,
      { issues: missing.map((m) => ({ path: 'services', message: m })) },
    );
}
