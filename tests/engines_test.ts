/**
 * The trainer's two GPU paths (src/sae/engines.ts) train the same SAEs to the same parameters,
 * and `auto` falls back to the kernel set for shapes the fused kernel does not take.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { initSaeRandom } from "../src/sae/init.ts";
import { trainToySaes } from "../src/sae/train.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { balancedTree, unbalancedTree } from "../src/toy/notebook_trees.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { largeToyTree } from "../src/bench/shapes.ts";

const CONFIGS: Partial<SaeConfig>[] = [
  { useDeltaLoss: true },
  { matryoshkaSteps: [4] },
  { matryoshkaInnerLossMultipliers: [0.25, 1] },
  { skipOuterLoss: false, reconstructionLoss: "L2", lpNorm: 2, matryoshkaSteps: [1, 2, 4] },
];

gpuTest("the fused and kernel-set paths train the same parameters", async (gpu) => {
  const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 1 });
  const trees = [balancedTree(), unbalancedTree()];
  const trained: MatryoshkaSAE[][] = [];
  for (const engine of ["fused", "kernels"] as const) {
    const saes = CONFIGS.map((c, i) => {
      const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...c });
      initSaeRandom(sae, 40 + i);
      return sae;
    });
    const results = await trainToySaes(
      saes.map((sae, i) => ({ sae, model, tree: trees[i % 2]! })),
      { steps: 25, seed: 4, quiet: true, engine },
      gpu,
    );
    results.forEach((r) => assert.equal(r.stepsDone, 25));
    trained.push(saes);
  }
  trained[0]!.forEach((sae, i) => {
    assertClose(sae.params, trained[1]![i]!.params, {
      atol: 2e-5,
      rtol: 1e-3,
      label: `model ${i}`,
    });
  });
});

gpuTest("auto trains shapes too large for the fused kernel with the kernel set", async (gpu) => {
  // 2 parents × 9 children: 20 read-out features, 24 latents: more Gram quantities than fit.
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: Array.from({ length: 2 }, () => ({
      activeProb: 0.3,
      children: Array.from({ length: 9 }, () => ({ activeProb: 0.2 })),
    })),
  });
  const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: 32, seed: 2 });
  const sae = new MatryoshkaSAE({
    ...NOTEBOOK_SAE_CONFIG,
    dIn: 32,
    dSae: 24,
    matryoshkaSteps: [2, 24],
    matryoshkaInnerLossMultipliers: [0.5, 1],
  });
  initSaeRandom(sae, 3);
  await assert.rejects(
    trainToySaes([{ sae, model, tree }], { steps: 2, quiet: true, engine: "fused" }, gpu),
    /engine "fused" cannot train this run: .*Gram quantities/,
  );
  const [result] = await trainToySaes([{ sae, model, tree }], { steps: 30, quiet: true }, gpu);
  assert.equal(result!.stepsDone, 30);
  assert.ok(Number.isFinite(result!.finalLosses.total));
});

gpuTest("progress snapshots hold each model's parameters as of their step", async (gpu) => {
  const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 2 });
  const fresh = () =>
    CONFIGS.slice(0, 2).map((c, i) => {
      const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...c });
      initSaeRandom(sae, 70 + i);
      return sae;
    });
  const runs = (saes: MatryoshkaSAE[]) => saes.map((sae) => ({ sae, model, tree: balancedTree() }));
  const snapshots = new Map<number, Float32Array[]>();
  const watched = fresh();
  await trainToySaes(runs(watched), {
    steps: 30,
    seed: 5,
    quiet: true,
    progressEvery: 10,
    progressParams: true,
    onProgress: (u) => snapshots.set(u.step, u.params!),
  }, gpu);
  assert.deepEqual([...snapshots.keys()], [10, 20, 30]);
  // The last snapshot is the result; the one at step 10 is what 10 steps alone train. (The
  // schedule is constant, so the first 10 of 30 steps are the same steps.)
  watched.forEach((sae, m) => assert.deepEqual(snapshots.get(30)![m], sae.params));
  const short = fresh();
  await trainToySaes(runs(short), { steps: 10, seed: 5, quiet: true }, gpu);
  short.forEach((sae, m) => assertClose(snapshots.get(10)![m]!, sae.params, { atol: 1e-6 }));
});

gpuTest("trainToySaes frees every GPU buffer it made, on either path", async (gpu) => {
  const live = new Set<GPUBuffer>();
  const device = gpu.device;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor) => {
    const buffer = create(descriptor);
    live.add(buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      live.delete(buffer);
      destroy();
    };
    return buffer;
  };
  try {
    const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 1 });
    for (const engine of ["fused", "kernels", "fused", "kernels"] as const) {
      const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG });
      initSaeRandom(sae, 5);
      await trainToySaes([{ sae, model, tree: balancedTree() }], {
        steps: 3,
        quiet: true,
        engine,
      }, gpu);
      assert.deepEqual([...live].map((b) => b.label), [], `${engine}: buffers left alive`);
    }
    assert.ok(live.size === 0);
  } finally {
    device.createBuffer = create;
  }
});

gpuTest("a 64-latent SAE on 64 features trains with warm-up and decay", async (gpu) => {
  // The larger toy's tree (8 parents × 7 children) in 128 dimensions, prefixes [8, 64].
  const tree = largeToyTree();
  const model = new ToyModel({ nFeatures: 64, hiddenDim: 128, seed: 4 });
  const steps = 400;
  const train = async (schedule: { warmupSteps?: number; decaySteps?: number }) => {
    const sae = new MatryoshkaSAE({
      ...NOTEBOOK_SAE_CONFIG,
      dIn: 128,
      dSae: 64,
      matryoshkaSteps: [8, 64],
      matryoshkaInnerLossMultipliers: [0.25, 1],
    });
    initSaeRandom(sae, 8);
    const losses = new Map<number, number>();
    const params = new Map<number, Float32Array>();
    await trainToySaes([{ sae, model, tree }], {
      steps,
      lr: 3e-3,
      seed: 2,
      quiet: true,
      progressEvery: 20,
      progressParams: true,
      onProgress: (u) => {
        losses.set(u.step, u.losses[0]!);
        params.set(u.step, u.params![0]!);
      },
      ...schedule,
    }, gpu);
    // How far the parameters moved over the last 20 steps.
    const a = params.get(steps - 20)!, b = params.get(steps)!;
    const moved = Math.hypot(...a.map((v, i) => v - b[i]!));
    return { losses, moved };
  };
  const scheduled = await train({ warmupSteps: 50, decaySteps: 200 });
  const constant = await train({});
  assert.equal(scheduled.losses.size, steps / 20);
  assert.ok(
    scheduled.losses.get(steps)! < 0.5 * scheduled.losses.get(20)!,
    `the loss falls: ${scheduled.losses.get(20)} → ${scheduled.losses.get(steps)}`,
  );
  // At the end of the decay the learning rate is lr/10: the last steps move the parameters far
  // less than at a constant rate.
  assert.ok(
    scheduled.moved < 0.5 * constant.moved,
    `decayed ${scheduled.moved} vs constant ${constant.moved}`,
  );
});
