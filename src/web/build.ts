/**
 * Builds the browser page into a folder of static files: `index.html`, `page.css` and `app.js`
 * (`app.ts` and the library code it uses, bundled for the browser by `deno bundle`; nothing that
 * needs Deno's file system or processes is reached from it). The folder is replaced atomically
 * and follows the output-folder rules of the experiments (absent, empty or an earlier build).
 */
import { checkOutputDir, type OutputPlan, writeOutputDir } from "../io/output_dir.ts";

/**
 * The files of a build, all at the top of its folder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WEB_FILES } from "./build.ts";
 * assert.ok(WEB_FILES.includes("index.html"));
 * ```
 */
export const WEB_FILES = ["index.html", "page.css", "app.js"] as const;

const SOURCES = new URL("./", import.meta.url);

/**
 * The output plan of a build into `out` (see `io/output_dir.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { webOutputPlan } from "./build.ts";
 * assert.deepEqual(webOutputPlan("out/web").files, ["index.html", "page.css", "app.js"]);
 * ```
 */
export function webOutputPlan(out: string): OutputPlan {
  return { path: out, what: "--out", files: WEB_FILES, bytes: 2 * 1024 * 1024 };
}

/**
 * Bundles and copies the page into `out`; returns each file's size in bytes.
 *
 * @throws {OutputError} before anything is built when `out` cannot be used.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildWebPage } from "./build.ts";
 * const dir = await Deno.makeTempDir();
 * const sizes = await buildWebPage(`${dir}/web`);
 * assert.ok(sizes["app.js"] > 100_000); // the library's trainer, kernels and figures
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function buildWebPage(
  out: string,
  { minify = true }: { minify?: boolean } = {},
): Promise<Record<(typeof WEB_FILES)[number], number>> {
  const plan = webOutputPlan(out);
  await checkOutputDir(plan);
  const sizes = {} as Record<(typeof WEB_FILES)[number], number>;
  await writeOutputDir(plan, async (dir) => {
    for (const name of ["index.html", "page.css"] as const) {
      await Deno.copyFile(new URL(name, SOURCES), `${dir}/${name}`);
    }
    const args = ["bundle", "--platform", "browser", "--quiet", "-o", `${dir}/app.js`];
    if (minify) args.push("--minify");
    args.push(new URL("app.ts", SOURCES).pathname);
    const bundled = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!bundled.success) {
      const message = new TextDecoder().decode(bundled.stderr).trim().split("\n")[0];
      throw new Error(`Cannot bundle the page: deno bundle failed: ${message}`);
    }
    for (const name of WEB_FILES) sizes[name] = (await Deno.stat(`${dir}/${name}`)).size;
  });
  return sizes;
}
