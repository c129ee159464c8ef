/**
 * Checkpoint files in Node (docs/reliability.md, invariants 3 and 4).
 *
 * A save never destroys the last good checkpoint — under concurrency, crashes or a hostile
 * directory: the dict is encoded (and so validated) before the disk is touched; the bytes go to
 * a fresh temporary file beside the target with an unguessable name (96 random bits), created
 * exclusively (`wx`, mode 0o600: a planted file or symlink makes the create fail instead of
 * redirecting the write); the file is flushed (fsync), renamed over the target in one atomic
 * step, and the directory is flushed where the platform allows. On any failure the temporary
 * file is removed. Concurrent saves to one path each rename their own complete file: the last
 * rename wins, never a mix.
 *
 * A load accepts only a regular file: it opens the path (non-blocking, so a FIFO cannot hang
 * the open), checks the opened handle with fstat (no check-then-open race), and reads exactly
 * the size fstat reported, so a device or a growing file cannot make it read without bound.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { deserializeStateDict, serializeStateDict } from '../io/serialize.js';
import type { StateDict } from '../optim/statedict.js';

/** Largest checkpoint file a load reads (the largest buffer Node can allocate). */
const MAX_FILE_BYTES = bufferConstants.MAX_LENGTH;

function checkPath(path: unknown, who: string): asserts path is string {
  if (typeof path !== 'string') throw new Error(`${who}: path must be a string, got ${path === null ? 'null' : typeof path}`);
  if (path.length === 0) throw new Error(`${who}: path is empty`);
  if (path.includes('\0')) throw new Error(`${who}: path contains a NUL byte`);
}

/** Wraps a file-system error with who failed and on which path (the original stays as `cause`). */
function wrap(err: unknown, who: string, what: string): Error {
  const e = err as NodeJS.ErrnoException;
  return new Error(`${who}: ${what}: ${e?.code ? `${e.code} ` : ''}${String(e?.message ?? err)}`, { cause: err });
}

/** Flushes a directory's entries (the rename) to disk; platforms that cannot (Windows) are skipped. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY);
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'ENOTSUP', 'EBADF'].includes(code ?? '')) throw err;
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Writes `dict` (from `optimizer.stateDict()`) to `path` atomically. Throws, leaving any file at
 * `path` untouched, when `dict` is not a state dict or cannot be stored (see `serializeStateDict`).
 */
export async function saveStateDictFile(path: string, dict: StateDict): Promise<void> {
  const who = 'saveStateDictFile';
  checkPath(path, who);
  let bytes: Uint8Array;
  try {
    bytes = serializeStateDict(dict);
  } catch (err) {
    throw new Error(`${who}: refusing to write ${path}: ${(err as Error).message}`, { cause: err });
  }
  const target = resolve(path);
  const dir = dirname(target);
  // Beside the target (same file system, so the rename is atomic), hidden, unguessable.
  const stem = basename(target).slice(0, 100);
  let tmp = '';
  let handle: FileHandle | undefined;
  for (let attempt = 0; handle === undefined; attempt++) {
    tmp = join(dir, `.${stem}.${randomBytes(12).toString('hex')}.tmp`);
    try {
      handle = await open(tmp, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 3) continue;
      throw wrap(err, who, `cannot create a temporary file in ${dir}`);
    }
  }
  let renamed = false;
  try {
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    try {
      await rename(tmp, target);
    } catch (err) {
      throw wrap(err, who, `cannot replace ${path}`);
    }
    renamed = true;
    await syncDirectory(dir);
  } catch (err) {
    await handle?.close().catch(() => {});
    if (!renamed) await rm(tmp, { force: true }).catch(() => {});
    throw (err as Error).message?.startsWith(who) ? err : wrap(err, who, `writing ${path} failed`);
  }
}

/** Reads and checks a checkpoint file; pass the result to `optimizer.loadStateDict`. */
export async function loadStateDictFile(path: string): Promise<StateDict> {
  const who = 'loadStateDictFile';
  checkPath(path, who);
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO with no writer returns at once (then fstat rejects it).
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw wrap(err, who, `cannot open ${path}`);
  }
  let bytes: Uint8Array;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      const kind = stat.isDirectory() ? 'a directory' : stat.isFIFO() ? 'a FIFO' : stat.isCharacterDevice() ? 'a character device' : stat.isBlockDevice() ? 'a block device' : stat.isSocket() ? 'a socket' : 'not a file';
      throw new Error(`${who}: ${path} is ${kind}, not a regular file`);
    }
    const size = stat.size;
    if (size > MAX_FILE_BYTES) throw new Error(`${who}: ${path} is ${size} bytes, larger than the largest checkpoint this process can read (${MAX_FILE_BYTES})`);
    bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) throw new Error(`${who}: ${path} shrank while being read (${done} of ${size} bytes)`);
      done += bytesRead;
    }
    const { bytesRead: extra } = await handle.read(new Uint8Array(1), 0, 1, size);
    if (extra !== 0) throw new Error(`${who}: ${path} grew while being read (past ${size} bytes)`);
  } catch (err) {
    throw (err as Error).message?.startsWith(who) ? err : wrap(err, who, `reading ${path} failed`);
  } finally {
    await handle.close().catch(() => {});
  }
  try {
    return deserializeStateDict(bytes);
  } catch (err) {
    throw new Error(`${who}: ${path}: ${(err as Error).message}`, { cause: err });
  }
}
