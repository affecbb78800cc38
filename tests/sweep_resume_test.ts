/**
 * Long sweeps survive interruption: every finished chunk is recorded, and a sweep stopped after
 * some chunks (or missing its last record) and resumed with `resume` ends with exactly the files
 * of an uninterrupted run. A folder holding a sweep is never overwritten by accident.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { runSweep, type SweepOptions } from "../src/sweep/run_sweep.ts";

const root = await Deno.makeTempDir({ prefix: "sweep_resume_" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

/** 2 trees × 4 β × 1 seed = 8 grid SAEs in 4 chunks, then one refinement round (1–2 chunks). */
const settings = (out: string): SweepOptions => ({
  out,
  betas: [0, 0.25, 0.5, Infinity],
  seeds: 1,
  steps: 200,
  chunk: 2,
  refine: 1,
  quiet: true,
  log: () => {},
});

/** Every file under `dir` (relative path → content). */
async function snapshot(dir: string, prefix = ""): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      for (const [p, c] of await snapshot(dir, path)) files.set(p, c);
    } else files.set(path, await Deno.readTextFile(`${dir}/${path}`));
  }
  return files;
}

function assertSameFiles(actual: Map<string, string>, expected: Map<string, string>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, content] of expected) {
    assert.ok(actual.get(path) === content, `${path} differs`);
  }
}

let reference: Promise<{ files: Map<string, string>; chunks: number }> | undefined;
/** The uninterrupted sweep's files and number of chunks. */
function uninterrupted(): Promise<{ files: Map<string, string>; chunks: number }> {
  reference ??= (async () => {
    const result = await runSweep(settings(`${root}/whole`));
    assert.equal(result.complete, true);
    assert.ok(
      result.chunksTrained >= 5,
      `4 grid chunks and refinement, got ${result.chunksTrained}`,
    );
    assert.ok(result.rows.some((r) => r.round === 1));
    return { files: await snapshot(`${root}/whole`), chunks: result.chunksTrained };
  })();
  return reference;
}

gpuTest(
  "an interrupted sweep resumed with resume ends with the same files as an uninterrupted one",
  async () => {
    const { files: expected, chunks } = await uninterrupted();
    assert.ok(expected.has("sweep.json") && expected.has("chunks/chunk-00004.json"));
    const out = `${root}/interrupted`;

    const first = await runSweep({ ...settings(out), maxChunks: 3 });
    assert.equal(first.complete, false);
    assert.equal(first.chunksTrained, 3);
    const partial = await snapshot(out);
    assert.ok(!partial.has("sweep.json"), "no sweep.json before the sweep is complete");
    assert.equal(partial.get("sweep.csv")!.trimEnd().split("\n").length, 1 + 6);

    // Stops again after the last grid chunk and the first refinement chunk, then finishes.
    const second = await runSweep({ ...settings(out), resume: true, maxChunks: 2 });
    assert.equal(second.chunksTrained, 2);
    assert.equal(second.complete, chunks === 5);
    const third = await runSweep({ ...settings(out), resume: true });
    assert.equal(third.complete, true);
    assert.equal(third.chunksTrained, chunks - 5);
    assertSameFiles(await snapshot(out), expected);

    // Resuming a finished sweep trains nothing and rewrites the same outputs.
    const again = await runSweep({ ...settings(out), resume: true });
    assert.equal(again.chunksTrained, 0);
    assertSameFiles(await snapshot(out), expected);
  },
);

gpuTest(
  "a sweep whose last chunk record is missing retrains that chunk on resume, same files",
  async () => {
    const { files: expected, chunks } = await uninterrupted();
    const out = `${root}/lost_record`;
    for (const [path, content] of expected) {
      await Deno.mkdir(`${out}/${path}`.replace(/\/[^/]+$/, ""), { recursive: true });
      await Deno.writeTextFile(`${out}/${path}`, content);
    }
    await Deno.remove(`${out}/chunks/chunk-0000${chunks - 1}.json`);
    await Deno.remove(`${out}/sweep.json`);
    const result = await runSweep({ ...settings(out), resume: true });
    assert.equal(result.chunksTrained, 1);
    assertSameFiles(await snapshot(out), expected);
  },
);

gpuTest(
  "a folder holding a sweep is kept: refused without resume, and resume refuses other settings",
  async () => {
    await uninterrupted();
    const out = `${root}/whole`;
    await assert.rejects(() => runSweep(settings(out)), /already holds one; pass --resume/);
    await assert.rejects(
      () => runSweep({ ...settings(out), steps: 300, resume: true }),
      /settings differ from this run's, --steps: 200 vs 300/,
    );
    await assert.rejects(
      () => runSweep({ ...settings(out), betas: [0, 0.5, Infinity], resume: true }),
      /--betas/,
    );
    await assert.rejects(
      () => runSweep({ ...settings(out), evalRows: 5000, resume: true }),
      /--eval-rows: 100000 vs 5000/,
    );
    // A manifest written before --eval-rows was a setting means the default rows.
    const manifestPath = `${out}/manifest.json`;
    const manifest = await Deno.readTextFile(manifestPath);
    const { evalRows, ...older } = JSON.parse(manifest);
    assert.equal(evalRows, 100_000);
    await Deno.writeTextFile(manifestPath, JSON.stringify(older, null, 2) + "\n");
    try {
      const resumed = await runSweep({ ...settings(out), resume: true });
      assert.ok(resumed.complete && resumed.chunksTrained === 0);
    } finally {
      await Deno.writeTextFile(manifestPath, manifest);
    }
    await Deno.mkdir(`${root}/other`);
    await Deno.writeTextFile(`${root}/other/notes.txt`, "mine");
    await assert.rejects(() => runSweep(settings(`${root}/other`)), /holds other files/);
  },
);
