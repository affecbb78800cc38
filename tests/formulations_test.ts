/**
 * Every training formulation, run through the library's trainToySaes with a warm-up and a decay
 * of the learning rate, ends with the parameters of the float64 CPU reference trained on the same
 * batches (the CPU twin of the GPU sampler): the fused kernel at the notebook's shape, the kernel
 * set with `block` products (sizes that are not multiples of 4) and with `blocked` products
 * (multiples of 4), its latent encoder and latent decoder, each with several loss plans in one run.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { kernelFormulations, sharedTermRanges } from "../src/sae/kernel_step.ts";
import type { ModelEntry } from "../src/sae/model_table.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { initSaeRandom } from "../src/sae/init.ts";
import { type TrainOptions, trainToySaes } from "../src/sae/train.ts";
import type { EngineName } from "../src/sae/engines.ts";
import { PUBLISHED_OPTIMIZER, scheduleLrFactor } from "../src/sae/train_settings.ts";
import { newAdamState, referenceTrainStep } from "../src/reference/optimizer_reference.ts";
import { embedCpu, sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { balancedTree } from "../src/toy/notebook_trees.ts";
import type { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { largeToyTree } from "../src/bench/shapes.ts";

const STEPS = 24;
const SCHEDULE = { warmupSteps: 6, decaySteps: 10, lrEnd: 2e-4 } as const;
const LR = 1e-3;

interface Formulation {
  engine: EngineName;
  tree: () => TreeFeatureGenerator;
  dIn: number;
  dSae: number;
  configs: Partial<SaeConfig>[];
  /** Rows per batch (default 32). */
  batch?: number;
}

async function checkAgainstReference(
  gpu: Gpu,
  f: Formulation,
  decode?: "direct" | "stacked",
  encoder: "direct" | "latent" = "direct",
  decoder: "direct" | "latent" = "direct",
): Promise<void> {
  const tree = f.tree();
  const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: f.dIn, seed: 3 });
  const saes = f.configs.map((c, i) => {
    const sae = new MatryoshkaSAE({
      ...NOTEBOOK_SAE_CONFIG,
      dIn: f.dIn,
      dSae: f.dSae,
      bDecInitMethod: "zeros",
      ...c,
    });
    initSaeRandom(sae, 60 + i);
    return sae;
  });
  const initial = saes.map((sae) => Float64Array.from(sae.params));
  if (decode) {
    const models = saes.map((sae) => ({ plan: sae.lossPlan() })) as ModelEntry[];
    const ranges = sharedTermRanges(models);
    assert.equal(ranges === null ? "stacked" : "direct", decode, "the path this case exercises");
    const formulation = kernelFormulations({
      models,
      batch: f.batch ?? 32,
      dIn: f.dIn,
      dSae: f.dSae,
      nFeatures: tree.nFeatures,
    });
    assert.deepEqual(formulation, { encoder, decoder }, "the formulations this case exercises");
  }
  const batch = f.batch ?? 32;
  const seed = 9;
  const options: TrainOptions = {
    steps: STEPS,
    batchSize: batch,
    seed,
    lr: LR,
    quiet: true,
    engine: f.engine,
    ...SCHEDULE,
  };
  await trainToySaes(saes.map((sae) => ({ sae, model, tree })), options, gpu);

  const schedule = {
    totalSteps: STEPS,
    warmupSteps: SCHEDULE.warmupSteps,
    decaySteps: SCHEDULE.decaySteps,
    lrEndFactor: SCHEDULE.lrEnd / LR,
  };
  const shape = { groups: 1, batch, nFeatures: tree.nFeatures, dIn: f.dIn };
  saes.forEach((sae, i) => {
    const params = initial[i]!;
    const state = newAdamState(params.length);
    for (let step = 0; step < STEPS; step++) {
      const x = embedCpu(
        sampleBatchCpu(tree, { seed, step, batchSize: batch }),
        model.embedding,
        shape,
      );
      const hyper = { ...PUBLISHED_OPTIMIZER, lr: LR * scheduleLrFactor(schedule, step) };
      referenceTrainStep(params, state, sae.config, hyper, x, batch);
    }
    assertClose(sae.params, params, {
      atol: 5e-5,
      rtol: 2e-3,
      label: `${f.engine} dIn ${f.dIn} dSae ${f.dSae} model ${i}`,
    });
  });
}

gpuTest("the fused kernel with warm-up and decay equals the CPU reference", async (gpu) => {
  await checkAgainstReference(gpu, {
    engine: "fused",
    tree: balancedTree,
    dIn: 50,
    dSae: 4,
    configs: [{}, { useDeltaLoss: true }, { matryoshkaInnerLossMultipliers: [0.25, 1] }],
  });
});

gpuTest(
  "the kernel set's stacked path with warm-up and decay equals the CPU reference",
  async (gpu) => {
    // Different term ranges per model: decoded through the masked [T·B] stack.
    await checkAgainstReference(
      gpu,
      {
        engine: "kernels",
        tree: balancedTree,
        dIn: 50,
        dSae: 4,
        configs: [{}, { useDeltaLoss: true }, { skipOuterLoss: false, reconstructionLoss: "L2" }],
      },
      "stacked",
      "latent",
    );
  },
);

gpuTest("the kernel set's direct path, block products, equals the CPU reference", async (gpu) => {
  // Shared term ranges [0, 1), [0, 4); sizes not multiples of 4.
  await checkAgainstReference(
    gpu,
    {
      engine: "kernels",
      tree: balancedTree,
      dIn: 50,
      dSae: 4,
      configs: [{}, { matryoshkaInnerLossMultipliers: [0.25, 1], lpNorm: 2 }, {
        l1Coefficient: 0.1,
      }],
    },
    "direct",
    "latent",
  );
});

gpuTest("the kernel set's direct path, blocked products, equals the CPU reference", async (gpu) => {
  // Shared term ranges with the delta loss's detached prefix; multiples of 4.
  const shared = { matryoshkaSteps: [4, 8, 16], useDeltaLoss: true };
  await checkAgainstReference(gpu, {
    engine: "kernels",
    tree: () => largeToyTree(2, 7),
    dIn: 32,
    dSae: 16,
    configs: [
      shared,
      { ...shared, normalizeSaeDecoder: true, scaleSparsityPenaltyByDecoderNorm: false },
      { ...shared, matryoshkaInnerLossMultipliers: [0.25, 0.5, 1], applyBDecToInput: false },
    ],
  }, "direct");
});

gpuTest(
  "the kernel set's stacked path, blocked products, equals the CPU reference",
  async (gpu) => {
    await checkAgainstReference(gpu, {
      engine: "kernels",
      tree: () => largeToyTree(2, 7),
      dIn: 32,
      dSae: 16,
      configs: [
        { matryoshkaSteps: [4, 16] },
        { matryoshkaSteps: [8, 16], matryoshkaInnerLossMultipliers: [0.25, 1], lpNorm: 2 },
      ],
    }, "stacked");
  },
);

gpuTest("the kernel set's latent encoder (x = f·E) equals the CPU reference", async (gpu) => {
  // 16 features in 256 dimensions, batch 64: f·(E·W_enc) needs under half the multiply-adds.
  const shared = { matryoshkaSteps: [4, 16] };
  await checkAgainstReference(
    gpu,
    {
      engine: "kernels",
      tree: () => largeToyTree(2, 7),
      dIn: 256,
      dSae: 16,
      batch: 64,
      configs: [
        shared,
        { ...shared, applyBDecToInput: false, matryoshkaInnerLossMultipliers: [0.25, 1] },
        { ...shared, lpNorm: 2, l1Coefficient: 0.1 },
      ],
    },
    "direct",
    "latent",
  );
});

gpuTest("the kernel set's latent decoder (x = f·E) equals the CPU reference", async (gpu) => {
  // 16 features in 256 dimensions, batch 128: the basis W_dec, b_dec, −E (K = 36) needs a third of
  // the direct decode's multiply-adds; encoder and decoder latent, so no x is formed at all.
  const shared = { matryoshkaSteps: [4, 16] };
  await checkAgainstReference(
    gpu,
    {
      engine: "kernels",
      tree: () => largeToyTree(2, 7),
      dIn: 256,
      dSae: 16,
      batch: 128,
      configs: [
        shared,
        { ...shared, applyBDecToInput: false, matryoshkaInnerLossMultipliers: [0.25, 1] },
        { ...shared, normalizeSaeDecoder: true, scaleSparsityPenaltyByDecoderNorm: false },
        { ...shared, lpNorm: 2, l1Coefficient: 0.1 },
      ],
    },
    "direct",
    "latent",
    "latent",
  );
});

gpuTest("the latent decoder with block products equals the CPU reference", async (gpu) => {
  // d_sae 6 (not a multiple of 4): the Gram blocks and coefficient products run as `block`; the
  // delta loss's detached prefix.
  await checkAgainstReference(
    gpu,
    {
      engine: "kernels",
      tree: balancedTree,
      dIn: 200,
      dSae: 6,
      batch: 64,
      configs: [
        { matryoshkaSteps: [1, 6], useDeltaLoss: true },
        { matryoshkaSteps: [1, 6], useDeltaLoss: true, matryoshkaInnerLossMultipliers: [0.5, 1] },
      ],
    },
    "direct",
    "latent",
    "latent",
  );
});
