/**
 * `deno task single-latent` (the paper's single-latent notebook): the analytic loss curve against
 * values computed by hand, the four data settings' firing laws on 102k GPU rows, and a shortened
 * run that already tells the notebook's story, end to end with its files.
 */
import assert from "node:assert/strict";
import { gpuTest, hasGpu } from "./_gpu.ts";
import {
  curveMinimum,
  SINGLE_LATENT_LOSS_CURVES,
  singleLatentLoss,
} from "../src/metrics/loss_curves.ts";
import { SINGLE_LATENT_DATA, singleLatentTree } from "../src/toy/single_latent_worlds.ts";
import { GpuTreeSampler } from "../src/toy/gpu_sampler.ts";
import { readF32 } from "../src/gpu/buffers.ts";

Deno.test("the loss curve equals hand-computed values at t = 0, ½ and 1", () => {
  const at = (t: number, l1: number) =>
    singleLatentLoss(t, { parentOnly: 0.3, parentAndChild: 0.1, l1 });
  // t = 0, v = p: L(p) = λ; L(p + c) = ‖c‖² + λ = 1 + λ.
  // t = ½, v = (p + c)/√2: L(p) = 1 − ½ + λ/√2; L(p + c) = 0 + λ√2.
  // t = 1, v = c: L(p) = 1 (h = 0); L(p + c) = ‖p‖² + λ = 1 + λ.
  for (const l1 of [0, 0.1]) {
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(at(0, l1), 0.3 * l1 + 0.1 * (1 + l1));
    close(at(0.5, l1), 0.3 * (0.5 + l1 / Math.SQRT2) + 0.1 * (l1 * Math.SQRT2));
    close(at(1, l1), 0.3 * 1 + 0.1 * (1 + l1));
  }
  // The minima move with the skew: towards the child when the pair is the more frequent case.
  const minimum = (name: string, l1: number) =>
    curveMinimum(SINGLE_LATENT_LOSS_CURVES.find((c) => c.name === name && c.l1 === l1)!);
  for (const l1 of [0, 0.1]) assert.ok(minimum("skew_parent", l1) < minimum("skew_child", l1));
});

gpuTest("the four data settings fire as published, on 102k GPU rows", async (gpu) => {
  const batch = 4096, steps = 25;
  const laws = {
    independent: [0.2, 0.2],
    hierarchical: [0.2, 0],
    partial: [0.2, 0.1],
    anti: [0.1, 0.2],
  } as const;
  for (const data of SINGLE_LATENT_DATA) {
    const sampler = await GpuTreeSampler.create(gpu, {
      groups: [{ tree: singleLatentTree(data), seed: 9 }],
      batchSize: batch,
    });
    let n = 0, parent = 0, childWith = 0, childWithout = 0;
    for (let s = 0; s < steps; s++) {
      const encoder = gpu.device.createCommandEncoder();
      sampler.encode(encoder);
      gpu.device.queue.submit([encoder.finish()]);
      const rows = await readF32(gpu, sampler.features);
      for (let b = 0; b < batch; b++) {
        const [f0, f1] = [rows[2 * b]!, rows[2 * b + 1]!];
        assert.ok((f0 === 0 || f0 === 1) && (f1 === 0 || f1 === 1), "magnitude 1");
        n++;
        if (f0 === 1) {
          parent++;
          if (f1 === 1) childWith++;
        } else if (f1 === 1) childWithout++;
      }
    }
    sampler.destroy();
    const within = (count: number, total: number, p: number, label: string) => {
      const se = Math.sqrt(Math.max(p * (1 - p), 1e-12) / total);
      assert.ok(
        Math.abs(count / total - p) <= 4 * se,
        `${data} ${label}: ${count / total} vs ${p}`,
      );
    };
    within(parent, n, 0.25, "P(f0)");
    within(childWith, parent, laws[data][0], "P(f1 | f0)");
    within(childWithout, n - parent, laws[data][1], "P(f1 | not f0)");
  }
});

const root = new URL("../", import.meta.url);

async function runSingleLatent(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "experiments/single_latent.ts",
      ...args,
    ],
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "a shortened single-latent run tells the notebook's story and writes every output",
  ignore: !hasGpu,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const r = await runSingleLatent([
        "--steps",
        String(SHORT_STEPS),
        "--out",
        `${dir}/out`,
        "--quiet",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const results = JSON.parse(await Deno.readTextFile(`${dir}/out/results.json`));
      const run = Object.fromEntries(
        results.runs.map((x: { name: string }) => [x.name, x]),
      ) as Record<
        string,
        {
          encoderCosSims: number[][];
          decoderCosSims: number[][];
          bDecCosSims: number[];
          bDecNorm: number;
        }
      >;
      const enc = (name: string) => run[name]!.encoderCosSims;
      const dec = (name: string) => run[name]!.decoderCosSims;
      // Independent features: the latent's decoder is the parent; b_dec learns the child scaled
      // by its firing probability (0.2).
      assert.ok(dec("independent")[0]![0]! > 0.99 && Math.abs(dec("independent")[0]![1]!) < 0.05);
      assert.ok(run.independent!.bDecCosSims[1]! > 0.95, `b_dec ${run.independent!.bDecCosSims}`);
      assert.ok(Math.abs(run.independent!.bDecNorm - 0.2) < 0.03, `${run.independent!.bDecNorm}`);
      // Hierarchical features, one latent: it hedges (mixes in the child), with or without noise.
      for (const name of ["hierarchical", "hedging_demo"]) {
        assert.ok(dec(name)[0]![1]! > 0.15, `${name}: decoder ${dec(name)}`);
        assert.ok(enc(name)[0]![1]! > 0.03, `${name}: encoder ${enc(name)}`);
      }
      // Two latents absorb: the parent latent's encoder subtracts the child, the child latent's
      // decoder takes on the parent.
      assert.ok(enc("absorption")[0]![1]! < -0.2, `absorption: encoder ${enc("absorption")}`);
      assert.ok(dec("absorption")[1]![0]! > 0.3, `absorption: decoder ${dec("absorption")}`);
      // Anti-correlated features: a negative child component.
      assert.ok(dec("anti_correlated")[0]![1]! < -0.05, `anti: decoder ${dec("anti_correlated")}`);
      assert.ok(enc("anti_correlated")[0]![1]! < 0, `anti: encoder ${enc("anti_correlated")}`);
      assert.deepEqual(results.lossCurves.map((c: { name: string }) => c.name), [
        "skew_parent",
        "skew_parent",
        "skew_child",
        "skew_child",
      ]);
      const files = [...Deno.readDirSync(`${dir}/out`)].map((e) => e.name);
      assert.equal(files.filter((f) => f.endsWith(".svg")).length, 9 * 2 + 2);
      assert.ok(files.includes("saes") && files.includes("results.json"));
      assert.match(r.stdout, /b_dec: norm 0\.\d{3}, cos with f1/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Steps of the shortened run (the story already holds there). */
const SHORT_STEPS = 10_000;

Deno.test("bad flags are refused with the usage", async () => {
  const r = await runSingleLatent(["--steps", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Cannot parse --steps: expected an integer from 1 to/);
  assert.match(r.stderr, /Usage: deno task single-latent/);
});
