/**
 * `cm blob`: move files in and out of blob storage (Azurite by default; see
 * `storageConfigFromEnv` for Azure). Talks to storage directly, not to the API.
 *
 *   cm blob put <container> <file-or-dir> [--prefix p] [--follow-symlinks]
 *                                                         upload a file, or a folder recursively;
 *                                                         symbolic links are reported and skipped
 *                                                         unless --follow-symlinks
 *   cm blob ls <container> [--prefix p] [--json]           list (streamed; --json prints a JSON array)
 *   cm blob get <container> <blob> <file>                  download one blob
 *
 * Exit codes: 0 ok, 1 storage error (missing container or blob, invalid name, ...), 2 usage.
 */
import { mkdir, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createStorage,
  guessContentType,
  isStorageError,
  storageConfigFromEnv,
  type BlobStorage,
} from '@coremachine/storage';

const USAGE = `usage: cm blob put <container> <file-or-dir> [--prefix p] [--follow-symlinks]
       cm blob ls <container> [--prefix p] [--json]
       cm blob get <container> <blob> <file>`;

const UPLOAD_CONCURRENCY = 8;

export interface BlobIo {
  out(line: string): void;
  err(line: string): void;
  storage?: BlobStorage;
}

const defaultIo: BlobIo = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
};

class UsageError extends Error {}

/** Runs `cm blob <argv...>`; returns the process exit code. */
export async function blobCommand(argv: string[], io: BlobIo = defaultIo): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        prefix: { type: 'string' },
        json: { type: 'boolean' },
        'follow-symlinks': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (!sub || values.help || sub === 'help' || sub === '--help' || sub === '-h') {
      io.out(USAGE);
      return sub ? 0 : 2;
    }
    const need = (n: number) => {
      if (positionals.length !== n)
        throw new UsageError(`cm blob ${sub} takes ${n} argument(s), got ${positionals.length}`);
      return positionals as string[];
    };
    const storage = io.storage ?? createStorage(storageConfigFromEnv());
    switch (sub) {
      case 'put': {
        const [container, path] = need(2);
        return await put(storage, container!, path!, values.prefix ?? '', io, values['follow-symlinks'] ?? false);
      }
      case 'ls': {
        const [container] = need(1);
        return await ls(storage, container!, values.prefix ?? '', values.json ?? false, io);
      }
      case 'get': {
        const [container, blob, file] = need(3);
        const target = resolve(file!);
        await mkdir(dirname(target), { recursive: true });
        const bytes = await storage.downloadToFile(container!, blob!, target);
        io.out(`downloaded ${container}/${blob} -> ${target} (${bytes} bytes)`);
        return 0;
      }
      default:
        throw new UsageError(`unknown blob command ${JSON.stringify(sub)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    if (isStorageError(err)) {
      io.err(`${err.code}: ${err.message}`);
      return 1;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      io.err(`${(err as Error).message}`);
      return 1;
    }
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}

/**
 * Files under `dir`, recursively, as paths relative to it with `/` separators. A symbolic link
 * is followed when `follow` (a link to a folder already being walked is not entered twice) and
 * otherwise reported through `skipped`; other special files (sockets, devices) are reported too.
 */
async function* walk(
  dir: string,
  options: { follow: boolean; skipped: (rel: string, why: string) => Promise<void> },
  base = dir,
  seen?: Set<string>,
): AsyncGenerator<{ rel: string; source: string }> {
  seen ??= new Set([await realpath(dir)]);
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = join(dir, e.name);
    const rel = relative(base, full).split(sep).join('/');
    if (e.isSymbolicLink()) {
      if (!options.follow) {
        await options.skipped(rel, `symbolic link to ${await readlink(full)}`);
        continue;
      }
      let target: string;
      let info;
      try {
        target = await realpath(full);
        info = await stat(target);
      } catch {
        await options.skipped(rel, `broken symbolic link to ${await readlink(full)}`);
        continue;
      }
      if (info.isFile()) yield { rel, source: full };
      else if (info.isDirectory()) {
        if (seen.has(target)) await options.skipped(rel, 'symbolic link back into a folder already uploaded');
        else yield* walk(full, options, base, new Set([...seen, target]));
      } else await options.skipped(rel, 'symbolic link to something that is not a file or folder');
    } else if (e.isDirectory()) yield* walk(full, options, base, seen);
    else if (e.isFile()) yield { rel, source: full };
    else await options.skipped(rel, 'not a regular file');
  }
}

async function put(
  storage: BlobStorage,
  container: string,
  path: string,
  prefix: string,
  io: BlobIo,
  follow: boolean,
): Promise<number> {
  const root = resolve(path);
  const info = await stat(root);
  const lead = prefix.replace(/\/+$/, '');
  const name = (rel: string) => (lead ? `${lead}/${rel}` : rel);
  if (await storage.ensureContainer(container)) io.out(`created container ${container}`);

  let skipped = 0;
  const skip = async (rel: string, why: string) => {
    skipped += 1;
    io.err(
      `skipped ${rel}: ${why}${why.startsWith('symbolic link to') ? ' (--follow-symlinks uploads its target)' : ''}`,
    );
  };
  const files: AsyncIterable<{ rel: string; source: string }> = info.isDirectory()
    ? walk(root, { follow, skipped: skip })
    : (async function* () {
        yield { rel: basename(root), source: root };
      })();
  let count = 0,
    bytes = 0;
  const inFlight = new Set<Promise<void>>();
  for await (const { rel, source } of files) {
    const blob = name(rel);
    const p = storage.uploadFile(container, blob, source, { contentType: guessContentType(blob) }).then((n) => {
      count += 1;
      bytes += n;
      io.out(`uploaded ${container}/${blob} (${n} bytes)`);
    });
    inFlight.add(p);
    p.finally(() => inFlight.delete(p)).catch(() => {});
    if (inFlight.size >= UPLOAD_CONCURRENCY) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  io.out(
    `${count} file(s), ${bytes} bytes uploaded to ${container}${lead ? `/${lead}/` : ''}${skipped ? `; ${skipped} skipped` : ''}`,
  );
  if (count === 0 && skipped > 0) {
    io.err('nothing uploaded: every entry was skipped');
    return 1;
  }
  return 0;
}

async function ls(storage: BlobStorage, container: string, prefix: string, json: boolean, io: BlobIo): Promise<number> {
  let count = 0,
    bytes = 0;
  if (json) io.out('[');
  for await (const b of storage.list(container, { prefix: prefix || undefined })) {
    if (json) {
      const row = {
        name: b.name,
        size: b.size,
        content_type: b.contentType,
        last_modified: b.lastModified.toISOString(),
        etag: b.etag,
      };
      io.out(`${count ? ',' : ''}${JSON.stringify(row)}`);
    } else {
      io.out(`${String(b.size).padStart(12)}  ${b.lastModified.toISOString()}  ${b.name}`);
    }
    count += 1;
    bytes += b.size;
  }
  if (json) io.out(']');
  else io.out(`${count} blob(s), ${bytes} bytes`);
  return 0;
}
