/**
 * Import from anywhere: a script in a temporary folder outside the repository (no `deno.json`, no
 * import map) imports `mod.ts` with one line, by path and by `file:` URL, type-checks with
 * `deno check`, and gets the same numbers as this process: a seeded batch of the notebook's
 * balanced tree, and (where a GPU runs) a short training run whose shaders load from the module's
 * own folder.
 */
import assert from "node:assert/strict";
import { hasGpu } from "./_gpu.ts";
import { subprocessEnv } from "./_subprocess_env.ts";
import { balancedTree } from "../src/toy/notebook_trees.ts";
import { sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { ToyModel } from "../src/toy/toy_model.ts";

const modPath = new URL("../mod.ts", import.meta.url).pathname;
const modUrl = new URL("../mod.ts", import.meta.url).href;

/** The script's body after its one import line: prints a JSON line of what it computed. */
const BODY = `
const batch = m.sampleBatchCpu(m.balancedTree(), { seed: 7, step: 3, batchSize: 64 });
const model = new m.ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 2 });
let trained = null;
if (Deno.args[0] === "gpu") {
  const sae = new m.MatryoshkaSAE({ ...m.NOTEBOOK_SAE_CONFIG, matryoshkaInnerLossMultipliers: [0.25, 1] });
  m.initSaeToMatchModel(sae, model, { noiseLevel: 0, featureOrdering: [0, 1, 2, 3] });
  const result = await m.trainToySae(sae, model, m.balancedTree(), { steps: 20, quiet: true });
  trained = result.stepsDone;
}
console.log(JSON.stringify({
  batchSum: Array.from(batch).reduce((a, b) => a + b, 0),
  embedding0: Array.from(model.embedding.slice(0, 5)),
  trained,
}));
`;

async function deno(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const env = subprocessEnv({ NO_COLOR: "1" });
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: text(r.stdout) + text(r.stderr) };
}

for (const [how, specifier] of [["path", modPath], ["file URL", modUrl]] as const) {
  Deno.test(`a script outside the repository imports mod.ts by ${how} with one line`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "matryoshka-import-" });
    try {
      assert.ok(
        !dir.startsWith(new URL("../", import.meta.url).pathname),
        "outside the repository",
      );
      await Deno.writeTextFile(`${dir}/use.ts`, `import * as m from "${specifier}";\n${BODY}`);
      const check = await deno(["check", "use.ts"], dir);
      assert.equal(check.code, 0, `deno check: ${check.out}`);
      const args = ["run", "--allow-read", "--allow-env", "use.ts"];
      if (hasGpu) args.push("gpu");
      const run = await deno(args, dir);
      assert.equal(run.code, 0, `deno run: ${run.out}`);
      const got = JSON.parse(run.out.trim().split("\n").at(-1)!);
      const batch = sampleBatchCpu(balancedTree(), { seed: 7, step: 3, batchSize: 64 });
      assert.equal(got.batchSum, Array.from(batch).reduce((a, b) => a + b, 0));
      const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 2 });
      assert.deepEqual(got.embedding0, Array.from(model.embedding.slice(0, 5)));
      assert.equal(got.trained, hasGpu ? 20 : null);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
