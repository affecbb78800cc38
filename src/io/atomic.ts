/**
 * Atomic file and folder replacement with Deno APIs only.
 *
 * A file is written to a temporary sibling, flushed to disk (best effort) and renamed over the
 * target, so readers see the old file or the new one, never a partial one. A folder is built as a
 * temporary sibling and swapped in with two renames (old → backup, new → final), then the backup
 * is removed. POSIX has no portable atomic exchange of two folders, so between the two renames the
 * final path is briefly absent; if the process dies there, the old contents remain in the
 * `.<name>.old-*` sibling. If building the new folder fails, the temporary folder is removed and
 * the existing folder is untouched.
 */

function splitPath(path: string): { dir: string; base: string } {
  const trimmed = path.replace(/[\\/]+$/, "");
  if (trimmed === "") {
    throw new RangeError(`Invalid path: expected a file or folder, got "${path}"`);
  }
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  return cut < 0
    ? { dir: ".", base: trimmed }
    : { dir: trimmed.slice(0, cut) || "/", base: trimmed.slice(cut + 1) };
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : `${dir}/${name}`;
}

function uniqueSuffix(): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `${Deno.pid}-${random[0]!.toString(36)}${random[1]!.toString(36)}`;
}

/** Flushes a folder's entries to disk where the platform allows opening a folder (best effort). */
async function syncDir(dir: string): Promise<void> {
  try {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Not supported here (e.g. Windows) or not permitted: durability is best effort.
  }
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch {
    // Already gone.
  }
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder, fsync, then rename.
 * The parent folder must exist. A string is written as UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.json`, "{}");
 * assert.equal(await Deno.readTextFile(`${dir}/a.json`), "{}");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const { dir, base } = splitPath(path);
  const tmp = join(dir, `.${base}.tmp-${uniqueSuffix()}`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    {
      using file = await Deno.open(tmp, { write: true, createNew: true });
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      try {
        await file.sync();
      } catch {
        // fsync unsupported: durability is best effort.
      }
    }
    await Deno.rename(tmp, path);
  } catch (error) {
    await removeQuietly(tmp);
    throw error;
  }
  await syncDir(dir);
}

/**
 * Replaces the folder `finalDir` with one built by `fill` in a temporary sibling folder.
 *
 * `fill(tmpDir)` writes the new contents into `tmpDir` (which exists and is empty). If it throws,
 * the temporary folder is removed, `finalDir` is left exactly as it was and the error is
 * rethrown. The parent of `finalDir` is created if missing. A `finalDir` that exists but is not
 * a folder is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { replaceDirAtomic } from "./atomic.ts";
 * const root = await Deno.makeTempDir();
 * await replaceDirAtomic(`${root}/sae`, async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/cfg.json`, "{}");
 * });
 * assert.equal(await Deno.readTextFile(`${root}/sae/cfg.json`), "{}");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function replaceDirAtomic(
  finalDir: string,
  fill: (tmpDir: string) => Promise<void>,
): Promise<void> {
  const { dir, base } = splitPath(finalDir);
  await Deno.mkdir(dir, { recursive: true });
  let existing: Deno.FileInfo | null = null;
  try {
    existing = await Deno.lstat(finalDir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (existing && !existing.isDirectory) {
    throw new Error(`Cannot replace "${finalDir}": it exists and is not a folder`);
  }

  const suffix = uniqueSuffix();
  const tmp = join(dir, `.${base}.tmp-${suffix}`);
  await Deno.mkdir(tmp);
  try {
    await fill(tmp);
    await syncDir(tmp);
  } catch (error) {
    await removeQuietly(tmp);
    throw error;
  }

  if (!existing) {
    try {
      await Deno.rename(tmp, finalDir);
    } catch (error) {
      await removeQuietly(tmp);
      throw error;
    }
    await syncDir(dir);
    return;
  }

  const old = join(dir, `.${base}.old-${suffix}`);
  try {
    await Deno.rename(finalDir, old);
  } catch (error) {
    await removeQuietly(tmp);
    throw error;
  }
  try {
    await Deno.rename(tmp, finalDir);
  } catch (error) {
    // Put the old folder back before reporting.
    await Deno.rename(old, finalDir).catch(() => {});
    await removeQuietly(tmp);
    throw error;
  }
  await syncDir(dir);
  await removeQuietly(old);
}
