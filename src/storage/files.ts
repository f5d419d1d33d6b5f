/**
 * File-system pieces the file-backed parts of storage share (the JSON-lines store and the
 * degraded-mode spool): durable renames and a per-folder lock holding the owner's pid.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { StorageError } from './contract.ts';

/** Fsyncs a folder so that a created or renamed file in it survives power loss (best effort where unsupported). Never throws. */
export function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems do not fsync folders; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Replaces `path` with `text` through `<path>.tmp` and a rename, so a reader sees the old or
 * the new content, never half. With `sync`, the file and its folder are fsynced. Throws the
 * file system's error.
 */
export function writeFileAtomically(args: { path: string; text: string; sync: boolean }): void {
  const temp = `${args.path}.tmp`;
  const fd = openSync(temp, 'w');
  try {
    const buffer = Buffer.from(args.text);
    let written = 0;
    while (written < buffer.length) written += writeSync(fd, buffer, written, buffer.length - written);
    if (args.sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, args.path);
  if (args.sync) fsyncDirectory(dirname(args.path));
}

/** True when a process with this pid exists (on this machine). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of the live process holding the lock file `path`, or null when none does. Never throws. */
export function lockHolder(path: string): number | null {
  try {
    if (!existsSync(path)) return null;
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the lock file `path` (a file holding this process's pid); one left by a process that
 * no longer exists (a crash) is taken over, and with `ownIsStale` one holding this process's
 * own pid too. Throws StorageError UNAVAILABLE, with `inUse(pid)` as the message, while another
 * live process (or, without `ownIsStale`, this one) holds it.
 */
export function takeLock(args: { path: string; inUse: (pid: number) => string; ownIsStale?: boolean }): void {
  const { path } = args;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StorageError('UNAVAILABLE', `cannot create the lock file ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    const holder = lockHolder(path);
    if (holder !== null && !(args.ownIsStale && holder === process.pid)) throw new StorageError('UNAVAILABLE', args.inUse(holder));
    rmSync(path, { force: true }); // left by a process that is gone
  }
  throw new StorageError('UNAVAILABLE', `cannot take the lock file ${path}: another process keeps taking it`);
}

/** Removes the lock file `path` when this process holds it. Never throws. */
export function releaseLock(path: string): void {
  try {
    if (Number.parseInt(readFileSync(path, 'utf8').trim(), 10) === process.pid) rmSync(path, { force: true });
  } catch {
    // Gone already.
  }
}
