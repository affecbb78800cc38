/**
 * Output folders a command owns: it writes only the files it names, and never removes anything
 * else. Before any work starts, {@link checkOutputDir} refuses what would fail or destroy data
 * later (the path is a file or lies under one, the folder holds files the command did not write,
 * no write permission, a read-only or full file system) by writing a probe of the expected size
 * where the folder will be built. {@link writeOutputDir} then replaces the folder atomically
 * (`replaceDirAtomic`): a failure while writing leaves the old folder exactly as it was and is
 * reported in one line.
 */
import { replaceDirAtomic } from "./atomic.ts";

/**
 * An output folder that cannot be used or written; the message names the folder and the fix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOutputDir, OutputError } from "./output_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/out`, "a file, not a folder");
 * await assert.rejects(
 *   checkOutputDir({ path: `${dir}/out`, what: "--out", files: ["result.json"] }),
 *   (error) => error instanceof OutputError && error.exitCode === 2, // refused before any work
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class OutputError extends Error {
  /** Always `"OutputError"`. */
  /** Always `"OutputError"`. */
  override name = "OutputError";
  /**
   * An output-folder error with its exit status.
   *
   * @param message one line: the folder, what is wrong and what to do.
   * @param exitCode 2 for a refusal before any work, 1 for a write that failed afterwards.
   */
  constructor(message: string, readonly exitCode: 1 | 2 = 2) {
    super(message);
  }
}

/** A command wrote a file its plan does not name: a bug, kept with its stack trace. */
class OutputPlanBug extends Error {
  override name = "OutputPlanBug";
}

/**
 * What a command will write.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type OutputPlan, writeOutputDir } from "./output_dir.ts";
 * const dir = await Deno.makeTempDir();
 * const plan: OutputPlan = {
 *   path: `${dir}/out`,
 *   files: ["summary.json", /^saes\/[^/]+\.json$/], // named files and a pattern
 *   folders: ["saes"], // the folder of the pattern's files
 * };
 * await writeOutputDir(plan, async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/summary.json`, "{}");
 *   await Deno.mkdir(`${tmp}/saes`);
 *   await Deno.writeTextFile(`${tmp}/saes/a.json`, "{}");
 * });
 * assert.equal(await Deno.readTextFile(`${dir}/out/saes/a.json`), "{}");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface OutputPlan {
  /** The folder. */
  path: string;
  /** How the folder was asked for, for messages (e.g. `--out`; default `output folder`). */
  what?: string;
  /**
   * Every file the command writes, relative to the folder (`saes/a/cfg.json`, …), or a pattern
   * for files named by the data (then list their folders in `folders`).
   */
  files: readonly (string | RegExp)[];
  /** Sub-folders of files given by patterns (folders of listed files are known already). */
  folders?: readonly string[];
  /** About how many bytes the folder will hold (the probe writes this many; default 64 KiB). */
  bytes?: number;
}

/** The first line of an error's message (Deno's file errors name the operation and path). */
export function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0]!;
}

function label(plan: { path: string; what?: string }): string {
  return `${plan.what ?? "output folder"} ${plan.path}`;
}

function parentOf(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  return cut < 0 ? "." : trimmed.slice(0, cut) || "/";
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    if (error instanceof Deno.errors.NotADirectory) return null;
    throw error;
  }
}

/**
 * The entries under `dir` the command does not own: files not in `files` and folders that hold
 * none of them (relative paths, at most `limit`).
 */
export async function foreignEntries(
  dir: string,
  files: readonly (string | RegExp)[],
  limit = 3,
  extraFolders: readonly string[] = [],
): Promise<string[]> {
  const named = new Set(files.filter((f) => typeof f === "string"));
  const patterns = files.filter((f) => f instanceof RegExp);
  const owned = { has: (path: string) => named.has(path) || patterns.some((p) => p.test(path)) };
  const folders = new Set<string>(extraFolders);
  for (const file of named) {
    const parts = file.split("/");
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
  }
  const found: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for await (const entry of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
      if (found.length >= limit) return;
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory && folders.has(path)) await walk(path);
      else if (!(entry.isFile && owned.has(path))) {
        found.push(entry.isDirectory ? `${path}/` : path);
      }
    }
  };
  await walk("");
  return found;
}

/** Refuses a folder that holds files the command did not write. */
async function checkOwned(plan: OutputPlan): Promise<void> {
  const foreign = await foreignEntries(plan.path, plan.files, 3, plan.folders);
  if (foreign.length > 0) {
    throw new OutputError(
      `Cannot write ${label(plan)}: it holds files this command did not write ` +
        `(${foreign.join(", ")}${foreign.length >= 3 ? ", …" : ""}); nothing was changed; ` +
        "choose another folder or empty this one",
    );
  }
}

/**
 * Checks, before any work, that the command can write its folder: Deno's write permission, a
 * path that is a folder or can become one, no files in it the command does not own, and a
 * writable file system with room for `plan.bytes` (a probe file is written and removed where the
 * folder will be built).
 *
 * @throws {OutputError} naming the folder, the problem and what to do (exit status 2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOutputDir, OutputError } from "./output_dir.ts";
 * const dir = await Deno.makeTempDir();
 * await checkOutputDir({ path: `${dir}/run`, files: ["result.json"] }); // a new folder: fine
 * await Deno.writeTextFile(`${dir}/notes.txt`, "not written by the command");
 * await assert.rejects(checkOutputDir({ path: dir, files: ["result.json"] }), OutputError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function checkOutputDir(plan: OutputPlan): Promise<void> {
  await checkWritable(plan);
  if (await lstatOrNull(plan.path)) await checkOwned(plan);
}

/**
 * {@link checkOutputDir} without the ownership check, for commands that manage a folder's
 * contents themselves (a sweep folder, which is refused unless it holds the same sweep).
 *
 * @throws {OutputError} naming the folder, the problem and what to do (exit status 2).
 */
export async function checkWritable(plan: Omit<OutputPlan, "files" | "folders">): Promise<void> {
  const where = label(plan);
  for (const name of ["read", "write"] as const) {
    const status = await Deno.permissions.query({ name, path: plan.path });
    if (status.state !== "granted") {
      throw new OutputError(
        `Cannot write ${where}: this process has no ${name} permission there; run it with ` +
          `--allow-${name} (the deno tasks do) or choose another folder`,
      );
    }
  }
  const info = await lstatOrNull(plan.path);
  if (info && !info.isDirectory) {
    throw new OutputError(
      `Cannot write ${where}: it is a ${info.isSymlink ? "symbolic link" : "file"}, not a ` +
        "folder; nothing was changed; choose another folder",
    );
  }
  // The new folder is built beside the final one: probe the nearest existing ancestor.
  let ancestor = parentOf(plan.path);
  for (;;) {
    const up = await lstatOrNull(ancestor);
    if (up && !up.isDirectory) {
      throw new OutputError(
        `Cannot write ${where}: ${ancestor} is a file, not a folder; choose another folder`,
      );
    }
    if (up) break;
    const next = parentOf(ancestor);
    if (next === ancestor) break;
    ancestor = next;
  }
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  const probe = `${ancestor.replace(/[\\/]+$/, "")}/.matryoshka-probe-${Deno.pid}-${random}`;
  try {
    using file = await Deno.open(probe, { write: true, createNew: true });
    const bytes = new Uint8Array(Math.max(1, plan.bytes ?? 65536));
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync().catch(() => {});
  } catch (error) {
    throw new OutputError(
      `Cannot write ${where}: writing in ${ancestor} failed (${reasonOf(error)}); nothing was ` +
        "changed; free space, fix the permissions or choose another folder",
    );
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

/**
 * Builds the folder with `fill` and puts it in place atomically, replacing an earlier output of
 * the same command. Files `fill` writes must be among `plan.files`.
 *
 * @throws {OutputError} when the folder holds files the command did not write (exit status 2), or
 *   when writing failed (exit status 1); either way the existing folder is unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeOutputDir } from "./output_dir.ts";
 * const dir = await Deno.makeTempDir();
 * const plan = { path: `${dir}/out`, files: ["a.txt"] };
 * await writeOutputDir(plan, (tmp) => Deno.writeTextFile(`${tmp}/a.txt`, "1"));
 * await writeOutputDir(plan, (tmp) => Deno.writeTextFile(`${tmp}/a.txt`, "2")); // replaces it
 * await assert.rejects(writeOutputDir(plan, (tmp) => Deno.writeTextFile(`${tmp}/b.txt`, "")));
 * assert.equal(await Deno.readTextFile(`${dir}/out/a.txt`), "2"); // the failed write kept it
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeOutputDir(
  plan: OutputPlan,
  fill: (tmpDir: string) => Promise<void>,
): Promise<void> {
  if (await lstatOrNull(plan.path)) await checkOwned(plan);
  try {
    await replaceDirAtomic(plan.path, async (tmp) => {
      await fill(tmp);
      const stray = await foreignEntries(tmp, plan.files, 3, plan.folders);
      if (stray.length > 0) {
        throw new OutputPlanBug(`wrote files outside the output plan: ${stray.join(", ")}`);
      }
    });
  } catch (error) {
    if (error instanceof OutputError || error instanceof OutputPlanBug) throw error;
    throw new OutputError(
      `Cannot write ${label(plan)}: ${reasonOf(error)}; the folder was left as it was`,
      1,
    );
  }
}
