/**
 * Test data for the kernel tests: a seeded generator of uniform floats, buffer helpers, and
 * hand-made loss plans / model tables.
 */
import type { Gpu } from "../src/gpu/device.ts";
import { uploadStorage } from "../src/gpu/buffers.ts";
import type { LossPlan, LossTerm } from "../src/sae/loss_plan.ts";
import { type ModelEntry, packModelTable } from "../src/sae/model_table.ts";

/** `n` floats uniform in [lo, hi) from a seeded mulberry32 stream (rounded to float32). */
export function randomFloats(
  seed: number,
  n: number,
  lo = -1,
  hi = 1,
): Float32Array<ArrayBuffer> {
  let state = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/** A storage buffer holding `data`, labelled for the test. */
export function upload(
  gpu: Gpu,
  label: string,
  data: Float32Array<ArrayBuffer> | Uint32Array<ArrayBuffer>,
): GPUBuffer {
  return uploadStorage(gpu, label, data);
}

/** A loss term with every field defaulted to "absent" (no decode, no penalty). */
export function term(fields: Partial<LossTerm>): LossTerm {
  return {
    kind: "prefix",
    prefixIndex: 0,
    end: 0,
    detachBelow: 0,
    reconKind: "mse",
    reconMult: 0,
    l1Start: 0,
    l1End: 0,
    l1Mult: 0,
    ...fields,
  };
}

/** A model-table entry with the notebook's optimiser unless overridden. */
export function modelEntry(
  plan: Partial<LossPlan> & { terms: LossTerm[] },
  fields: Partial<ModelEntry> = {},
): ModelEntry {
  return {
    plan: { lpNorm: 1, l1ByDecoderNorm: true, ...plan },
    applyBDecToInput: true,
    normalizeSaeDecoder: false,
    optimizer: { lr: 3e-4, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 1 },
    dataGroup: 0,
    ...fields,
  };
}

/** The model table of `entries` as a storage buffer. */
export function uploadModels(gpu: Gpu, entries: readonly ModelEntry[]): GPUBuffer {
  return uploadStorage(gpu, "models", packModelTable(entries));
}
