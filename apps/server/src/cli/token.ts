/**
 * `cm token`: API tokens, managed on the database directly (DATABASE_URL, CM_SCHEMA), as an
 * operator does on the server's host; this is also how the first admin token is made.
 *
 *   cm token create --role read|submit|admin --name <name> [--json]   prints the token once
 *   cm token list [--all] [--json]                                   active tokens (--all: revoked too)
 *   cm token revoke <name|id>
 *
 * Exit codes: 0 ok, 1 refused (a name in use, nothing to revoke, database error), 2 usage.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseEnv } from '../env.ts';
import { ROLES, TokenError, TokenStore, type Role } from '../auth/tokens.ts';

const USAGE = `usage: cm token create --role ${ROLES.join('|')} --name <name> [--json]
       cm token list [--all] [--json]
       cm token revoke <name|id>
Roles: read (get, list, events, catalogue) < submit (+ submit) < admin (+ cancel, retry, STAC writes, tokens).`;

export interface TokenIo {
  out(line: string): void;
  err(line: string): void;
}

const defaultIo: TokenIo = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
};

export async function tokenCommand(argv: string[], io: TokenIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    io.out(USAGE);
    return sub ? 0 : 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        role: { type: 'string' },
        name: { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`cm token: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const usage = (message: string) => {
    io.err(`cm token ${sub}: ${message}\n${USAGE}`);
    return 2;
  };
  if (sub === 'create') {
    if (!values.name) return usage('--name is required');
    if (!values.role || !ROLES.includes(values.role as Role))
      return usage(`--role is required: one of ${ROLES.join(', ')}`);
  } else if (sub === 'revoke') {
    if (positionals.length !== 1) return usage('give the name (or id) of one token');
  } else if (sub !== 'list') return usage(`unknown subcommand "${sub}"`);

  const env = parseEnv();
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
  try {
    const store = new TokenStore(pool, env.CM_SCHEMA);
    await store.ensure();
    if (sub === 'create') {
      const created = await store.create({ name: values.name!, role: values.role as Role });
      if (values.json) io.out(JSON.stringify(created, null, 2));
      else {
        io.err(`created token "${created.name}" (role ${created.role}); it is shown only now, keep it safe:`);
        io.out(created.token);
      }
      return 0;
    }
    if (sub === 'list') {
      const rows = await store.list({ includeRevoked: values.all ?? false });
      if (values.json) io.out(JSON.stringify(rows, null, 2));
      else if (!rows.length) io.out('no tokens (the API is anonymous on loopback unless CM_API_TOKEN is set)');
      else {
        const lines = [['ID', 'NAME', 'ROLE', 'TOKEN', 'CREATED', 'LAST USED', 'REVOKED']];
        for (const r of rows)
          lines.push([
            String(r.id),
            r.name,
            r.role,
            `${r.prefix}…`,
            r.createdAt.slice(0, 19),
            r.lastUsedAt?.slice(0, 19) ?? '-',
            r.revokedAt?.slice(0, 19) ?? '-',
          ]);
        const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
        for (const l of lines)
          io.out(
            l
              .map((c, i) => c.padEnd(widths[i]!))
              .join('  ')
              .trimEnd(),
          );
      }
      return 0;
    }
    const revoked = await store.revoke(positionals[0]!);
    if (!revoked) {
      io.err(`cm token revoke: no active token named ${JSON.stringify(positionals[0])}`);
      return 1;
    }
    io.out(`revoked token "${revoked.name}" (role ${revoked.role}, id ${revoked.id})`);
    return 0;
  } catch (err) {
    if (err instanceof TokenError) io.err(`cm token ${sub}: ${err.message}`);
    else io.err(`cm token ${sub}: cannot reach the database: ${(err as Error).message}`);
    return 1;
  } finally {
    await pool.end();
  }
}
