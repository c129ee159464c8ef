/**
 * Checkpoint files in Node. A save writes a temporary file beside the target, flushes it to disk
 * and renames it over the target, so an interrupted save leaves the previous checkpoint (or
 * nothing) — never a half-written file that loads. The CRC in the format catches the rest.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { deserializeStateDict, serializeStateDict } from '../io/serialize.js';
import type { StateDict } from '../optim/statedict.js';

/** Writes `dict` (from `optimizer.stateDict()`) to `path` atomically. */
export async function saveStateDictFile(path: string, dict: StateDict): Promise<void> {
  const bytes = serializeStateDict(dict);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const file = await open(tmp, 'w');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  await rename(tmp, path);
}

/** Reads and checks a checkpoint file; pass the result to `optimizer.loadStateDict`. */
export async function loadStateDictFile(path: string): Promise<StateDict> {
  return deserializeStateDict(new Uint8Array(await readFile(path)));
}
