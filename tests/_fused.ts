/**
 * Test helpers for the fused kernel used directly (createFusedStep): one data group, models built
 * from SAE configurations with random parameters, and the batches the kernel samples rebuilt on
 * the CPU.
 */
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { initSaeRandom } from "../src/sae/init.ts";
import { createFusedStep, type FusedStep } from "../src/sae/fused_step.ts";
import type { ModelEntry } from "../src/sae/model_table.ts";
import type { OptimizerSettings } from "../src/sae/train_settings.ts";
import { packWorld } from "../src/sae/world.ts";
import type { Gpu } from "../src/gpu/device.ts";
import type { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { embedCpu, sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { Rng } from "../src/toy/rng.ts";

/** Unit-norm random embedding `[nFeatures][dIn]`. */
export function randomEmbedding(nFeatures: number, dIn: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const e = new Float32Array(nFeatures * dIn);
  for (let f = 0; f < nFeatures; f++) {
    let norm = 0;
    for (let d = 0; d < dIn; d++) {
      const v = rng.normal();
      e[f * dIn + d] = v;
      norm += v * v;
    }
    for (let d = 0; d < dIn; d++) e[f * dIn + d]! /= Math.sqrt(norm);
  }
  return e;
}

/** What {@link fusedFixture} builds. */
export interface FusedFixtureOptions {
  configs: readonly Partial<SaeConfig>[];
  tree: TreeFeatureGenerator;
  dIn: number;
  batch: number;
  /** Data seed of the one group. */
  seed: number;
  optimizer: OptimizerSettings;
  workgroupSize?: number;
  privateStats?: boolean;
  countLoops?: boolean;
}

/** A fused step over `configs` (one SAE each, random parameters uploaded) and its inputs. */
export async function fusedFixture(gpu: Gpu, o: FusedFixtureOptions): Promise<{
  step: FusedStep;
  saes: MatryoshkaSAE[];
  /** The inputs x [batch][dIn] of data step `step` (float32 values, as the kernel sees them). */
  inputs: (step: number) => Float32Array;
}> {
  const embedding = randomEmbedding(o.tree.nFeatures, o.dIn, 7);
  const saes = o.configs.map((c, i) => {
    const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, dIn: o.dIn, ...c });
    initSaeRandom(sae, 100 + i);
    // Biases away from zero so every gradient path is exercised.
    sae.bDec.forEach((_, d) => sae.bDec[d] = 0.01 * Math.sin(d + i));
    sae.bEnc.forEach((_, j) => sae.bEnc[j] = 0.05 * (j - 1.5));
    return sae;
  });
  const models: ModelEntry[] = saes.map((sae) => ({
    plan: sae.lossPlan(),
    applyBDecToInput: sae.config.applyBDecToInput,
    normalizeSaeDecoder: sae.config.normalizeSaeDecoder,
    optimizer: o.optimizer,
    dataGroup: 0,
  }));
  const dSae = saes[0]!.config.dSae;
  const step = await createFusedStep(gpu, {
    models,
    batch: o.batch,
    dIn: o.dIn,
    dSae,
    world: packWorld([{ tree: o.tree, embedding, seed: o.seed }], o.dIn),
    trees: {
      groups: 1,
      maxFeatures: o.tree.nFeatures,
      maxDepth: 8,
      fixedMagnitudes: o.tree.features.every((f) => f.magnitudeStd === 0),
    },
    schedule: { totalSteps: 1000, warmupSteps: 0, decaySteps: 0, lrEndFactor: 1 },
    ...(o.workgroupSize ? { workgroupSize: o.workgroupSize } : {}),
    ...(o.privateStats !== undefined ? { privateStats: o.privateStats } : {}),
    ...(o.countLoops ? { countLoops: true } : {}),
  });
  gpu.device.queue.writeBuffer(
    step.buffers.params,
    0,
    step.packing.pack(saes.map((s) => s.params)),
  );
  const inputs = (at: number) =>
    embedCpu(sampleBatchCpu(o.tree, { seed: o.seed, step: at, batchSize: o.batch }), embedding, {
      groups: 1,
      batch: o.batch,
      nFeatures: o.tree.nFeatures,
      dIn: o.dIn,
    });
  return { step, saes, inputs };
}

/** Encodes `steps` steps in one dispatch and waits for them. */
export async function runFused(gpu: Gpu, step: FusedStep, steps: number): Promise<void> {
  const encoder = gpu.device.createCommandEncoder();
  step.encodeSteps(encoder, steps);
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
}
