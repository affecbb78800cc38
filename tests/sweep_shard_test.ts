/**
 * Sharing a sweep between machines: `--shard 0/2` and `--shard 1/2` merged give the unsharded
 * sweep's outputs byte for byte, a merged folder resumed with refinement gives the unsharded
 * refined sweep's outputs, and merging refuses folders of different sweeps.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { runSweep, type SweepOptions } from "../src/sweep/run_sweep.ts";
import { mergeSweeps } from "../src/sweep/merge.ts";
import { SweepFolderError } from "../src/sweep/store.ts";

const root = await Deno.makeTempDir({ prefix: "sweep_shard_" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

/** Every figure in every format: a merge must write the same bytes for PNG and PDF too. */
const FORMATS = ["svg", "png", "pdf"] as const;

/** 2 trees × 3 β × 2 seeds = 12 grid SAEs. */
const settings = (out: string, refine = 0): SweepOptions => ({
  out,
  betas: [0, 0.25, Infinity],
  seeds: 2,
  steps: 200,
  chunk: 4,
  refine,
  figureFormats: FORMATS,
  quiet: true,
  log: () => {},
});

const OUTPUTS = ["sweep.csv", "sweep.json"];

/** The outputs of a sweep folder: sweep.csv, sweep.json and every figure (bytes as hex). */
async function outputs(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  for (const name of OUTPUTS) files.set(name, await Deno.readTextFile(`${dir}/${name}`));
  for await (const entry of Deno.readDir(`${dir}/figures`)) {
    files.set(`figures/${entry.name}`, hex(await Deno.readFile(`${dir}/figures/${entry.name}`)));
  }
  const figures = [...files.keys()].filter((name) => name.startsWith("figures/"));
  for (const format of FORMATS) {
    assert.ok(figures.some((name) => name.endsWith(`.${format}`)), `${format} figures in ${dir}`);
  }
  return files;
}

function assertSameOutputs(actual: Map<string, string>, expected: Map<string, string>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, content] of expected) {
    assert.ok(actual.get(path) === content, `${path} differs`);
  }
}

let shards: Promise<void> | undefined;
/** The unsharded sweep and both shards (each shard asked for refinement, which it skips). */
function runAll(): Promise<void> {
  shards ??= (async () => {
    await runSweep(settings(`${root}/whole`));
    const lines: string[] = [];
    for (const index of [0, 1]) {
      const result = await runSweep({
        ...settings(`${root}/shard${index}`, 2),
        shard: { index, count: 2 },
        log: (line) => lines.push(line),
      });
      assert.equal(result.rows.length, 6);
      assert.ok(result.rows.every((r) => r.round === 0), "a shard does not refine");
    }
    assert.ok(lines.some((l) => l.startsWith("refinement skipped")));
  })();
  return shards;
}

gpuTest("--shard 0/2 and --shard 1/2 merged equal the unsharded sweep", async () => {
  await runAll();
  const shard0 = JSON.parse(await Deno.readTextFile(`${root}/shard0/sweep.json`));
  assert.equal(shard0.settings.shard, "0/2");
  const merged = await mergeSweeps({
    inputs: [`${root}/shard1`, `${root}/shard0`],
    out: `${root}/merged`,
    figureFormats: FORMATS,
    log: () => {},
  });
  assert.equal(merged.complete, true);
  assert.equal(merged.duplicates, 0);
  assert.equal(merged.rows.length, 12);
  assertSameOutputs(await outputs(`${root}/merged`), await outputs(`${root}/whole`));
});

gpuTest("a merged folder resumed with refinement equals the unsharded refined sweep", async () => {
  await runAll();
  await mergeSweeps({
    inputs: [`${root}/shard0`, `${root}/shard1`],
    out: `${root}/merged_refine`,
    figureFormats: FORMATS,
    log: () => {},
  });
  const merged = await runSweep({ ...settings(`${root}/merged_refine`, 1), resume: true });
  assert.ok(merged.rows.some((r) => r.round === 1), "refinement rows trained after the merge");
  await runSweep({ ...settings(`${root}/whole_refine`, 1) });
  assertSameOutputs(await outputs(`${root}/merged_refine`), await outputs(`${root}/whole_refine`));
});

gpuTest("merging one shard alone is incomplete and uses the rows present", async () => {
  await runAll();
  const result = await mergeSweeps({
    inputs: [`${root}/shard0`],
    out: `${root}/half`,
    log: () => {},
  });
  assert.equal(result.complete, false);
  assert.equal(result.rows.length, 6);
  const json = JSON.parse(await Deno.readTextFile(`${root}/half/sweep.json`));
  assert.equal(json.complete, false);
  assert.equal(json.rows.length, 6);
  // A merge replaces an earlier merge's folder, and keeps the first copy of a repeated row.
  const again = await mergeSweeps({
    inputs: [`${root}/shard0`, `${root}/shard0`],
    out: `${root}/half`,
    log: () => {},
  });
  assert.equal(again.duplicates, 6);
});

gpuTest(
  "merge refuses folders of different sweeps, naming the flag, and never overwrites a sweep",
  async () => {
    await runAll();
    const other = `${root}/other_steps`;
    await Deno.mkdir(other);
    const manifest = JSON.parse(await Deno.readTextFile(`${root}/shard1/manifest.json`));
    await Deno.writeTextFile(`${other}/manifest.json`, JSON.stringify({ ...manifest, steps: 400 }));
    await assert.rejects(
      () => mergeSweeps({ inputs: [`${root}/shard0`, other], out: `${root}/m2`, log: () => {} }),
      (error: unknown) =>
        error instanceof SweepFolderError && /--steps: 200 vs 400/.test(error.message),
    );
    await assert.rejects(
      () => mergeSweeps({ inputs: [`${root}/nowhere`], out: `${root}/m3`, log: () => {} }),
      /not a sweep folder/,
    );
    await assert.rejects(
      () => mergeSweeps({ inputs: [`${root}/shard0`], out: `${root}/whole`, log: () => {} }),
      /--out .*holds a sweep/,
    );
  },
);
