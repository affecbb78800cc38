/**
 * Packs what differs between the M models of one training run (loss plan, optimiser settings,
 * data group) into the `ModelInfo` table the training kernels read, and declares the loss record the
 * training step writes: one record table each (src/gpu/records.ts), from which the WGSL
 * declarations ({@link MODEL_TABLE_FILE}) are generated.
 * Shapes (dIn, dSae, batch) are shared by all models of a run and are not in the table.
 */
import type { ShaderFile } from "../gpu/pipelines.ts";
import { defineRecord, recordWgsl, writeRecord } from "../gpu/records.ts";
import type { LossPlan } from "./loss_plan.ts";
import type { SaeConfig } from "./config.ts";
import type { OptimizerSettings } from "./train_settings.ts";

/** Loss terms per model the kernels support. */
export const MAX_TERMS = 8;

/** `recon_kind` values of a {@link LOSS_TERM} (`RECON_MSE`, `RECON_L2` in WGSL). */
export const RECON_KIND = { mse: 0, l2: 1 } as const;

/** One loss term of a model (`LossTerm` in WGSL): 8 words. */
export const LOSS_TERM = defineRecord("LossTerm", [
  { name: "end", type: "u32", doc: "prefix end: latents [0, end) reconstruct" },
  { name: "detachBelow", type: "u32", doc: "latents below carry no gradient" },
  { name: "l1Start", type: "u32" },
  { name: "l1End", type: "u32" },
  { name: "reconKind", type: "u32", doc: "RECON_MSE or RECON_L2" },
  { name: "reconMult", type: "f32" },
  { name: "l1Mult", type: "f32" },
  { pad: 1 },
]);

/** What one model of a run is (`ModelInfo` in WGSL): 16 header words, then MAX_TERMS terms. */
export const MODEL_INFO = defineRecord("ModelInfo", [
  { name: "numTerms", type: "u32" },
  { name: "lpNorm", type: "f32" },
  { name: "l1ByDecoderNorm", type: "u32", doc: "1: weight activations by ||W_dec[j]||" },
  { name: "applyBDecToInput", type: "u32", doc: "1: encode x - b_dec" },
  { name: "normalizeDecoder", type: "u32", doc: "1: unit-norm decoder rows" },
  { name: "lr", type: "f32" },
  { name: "beta1", type: "f32" },
  { name: "beta2", type: "f32" },
  { name: "eps", type: "f32" },
  { name: "clipNorm", type: "f32", doc: "0: no clipping" },
  { name: "dataGroup", type: "u32", doc: "which data stream (tree, seed) the model trains on" },
  { pad: 5 },
  { name: "terms", record: LOSS_TERM, count: MAX_TERMS },
]);

/** 32-bit words per `ModelInfo` (16 header words + 8 terms of 8 words). */
export const MODEL_INFO_WORDS: number = MODEL_INFO.words;

/**
 * A model's loss record in the losses buffer written by a training step (f32; `LOSS_*` offsets in
 * WGSL): total, gradNorm (before clipping), recon and l1 per term (already multiplied), and the
 * TopK family's dead-latent auxiliary loss (0 for standard SAEs; included in the total).
 */
export const LOSS_RECORD = defineRecord("LossRecord", [
  { name: "total", type: "f32" },
  { name: "gradNorm", type: "f32" },
  { name: "recon", type: "f32", count: MAX_TERMS },
  { name: "l1", type: "f32", count: MAX_TERMS },
  { name: "aux", type: "f32" },
], { constPrefix: "LOSS", struct: false });

/** Everything the kernels need to know about one model. */
export interface ModelEntry {
  /** The Matryoshka loss terms (prefix ends, reconstruction and sparsity weights). */
  plan: LossPlan;
  /** Subtract `b_dec` from the input before encoding. */
  applyBDecToInput: boolean;
  /** Keep decoder rows at unit norm (and remove the gradient parallel to them). */
  normalizeSaeDecoder: boolean;
  /** Adam and gradient-clipping settings of this model. */
  optimizer: OptimizerSettings;
  /** Index of the data stream (tree and seed) this model trains on. */
  dataGroup: number;
  /** TopK / BatchTopK selection and its auxiliary loss (absent: the standard ReLU SAE). */
  topk?: TopKEntry;
}

/** What the kernels need to know about a TopK-family model. */
export interface TopKEntry {
  /** `topk` (per row) or `batchtopk` (over the batch). */
  architecture: "topk" | "batchtopk";
  /** Kept per row (on average over the batch for BatchTopK). */
  k: number;
  /** BatchTopK's threshold rate. */
  thresholdLr: number;
  /** Coefficient of the dead-latent auxiliary loss (0: none). */
  auxCoefficient: number;
  /** Dead latents per row in the auxiliary loss (resolved: ⌊dIn / 2⌋ when the config says null). */
  kAux: number;
  /** Dead: more than this many steps without firing. */
  deadWindow: number;
}

/**
 * The {@link TopKEntry} of a configuration, or undefined for a standard SAE.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topkEntry } from "./model_table.ts";
 * import { resolveSaeConfig } from "./config.ts";
 * const entry = topkEntry(resolveSaeConfig({ dIn: 50, dSae: 4, architecture: "batchtopk", k: 2 }));
 * assert.equal(entry?.kAux, 25); // ⌊dIn / 2⌋
 * assert.equal(topkEntry(resolveSaeConfig({ dIn: 50, dSae: 4 })), undefined);
 * ```
 */
export function topkEntry(config: SaeConfig): TopKEntry | undefined {
  if (config.architecture === "standard") return undefined;
  return {
    architecture: config.architecture,
    k: config.k,
    thresholdLr: config.topkThresholdLr,
    auxCoefficient: config.auxLossCoefficient,
    kAux: config.kAux ?? Math.max(1, Math.floor(config.dIn / 2)),
    deadWindow: config.deadFeatureWindow,
  };
}

/**
 * Packs `entries` into a `ModelInfo` array (one {@link MODEL_INFO} record of
 * {@link MODEL_INFO_WORDS} words each).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODEL_INFO, packModelTable } from "./model_table.ts";
 * import { readField } from "../gpu/records.ts";
 * import { lossPlan } from "./loss_plan.ts";
 * import { resolveSaeConfig } from "./config.ts";
 *
 * const plan = lossPlan(resolveSaeConfig({ dIn: 4, dSae: 4 }));
 * const optimizer = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, clipNorm: 0 };
 * const words = packModelTable([
 *   { plan, applyBDecToInput: true, normalizeSaeDecoder: true, optimizer, dataGroup: 3 },
 * ]);
 * assert.equal(readField(MODEL_INFO, words, 0, "dataGroup"), 3);
 * assert.equal(readField(MODEL_INFO, words, 0, "numTerms"), plan.terms.length);
 * ```
 */
export function packModelTable(entries: readonly ModelEntry[]): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(entries.length * MODEL_INFO_WORDS);
  entries.forEach((entry, m) => {
    const { plan, optimizer } = entry;
    if (plan.terms.length > MAX_TERMS) {
      throw new RangeError(
        `Model ${m}: ${plan.terms.length} loss terms, at most ${MAX_TERMS} are supported`,
      );
    }
    writeRecord(MODEL_INFO, words, m * MODEL_INFO_WORDS, {
      numTerms: plan.terms.length,
      lpNorm: plan.lpNorm,
      l1ByDecoderNorm: plan.l1ByDecoderNorm,
      applyBDecToInput: entry.applyBDecToInput,
      normalizeDecoder: entry.normalizeSaeDecoder,
      lr: optimizer.lr,
      beta1: optimizer.beta1,
      beta2: optimizer.beta2,
      eps: optimizer.eps,
      clipNorm: optimizer.clipNorm,
      dataGroup: entry.dataGroup,
      terms: plan.terms.map((term) => ({
        end: term.end,
        detachBelow: term.detachBelow,
        l1Start: term.l1Start,
        l1End: term.l1End,
        reconKind: RECON_KIND[term.reconKind],
        reconMult: term.reconMult,
        l1Mult: term.l1Mult,
      })),
    });
  });
  return words;
}

/**
 * Words per model in the losses buffer written by a training step: `[total, gradNorm,
 * recon_0..recon_7, l1_0..l1_7]` (per-term values already multiplied; gradNorm before clipping).
 */
export const LOSS_WORDS: number = LOSS_RECORD.words;
/** Offset of term t's reconstruction loss in a model's loss record. */
export const lossReconSlot = (t: number): number => LOSS_RECORD.offset.recon + t;
/** Offset of term t's sparsity loss in a model's loss record. */
export const lossL1Slot = (t: number): number => LOSS_RECORD.offset.l1 + t;

/**
 * The generated WGSL of the model table, included before every kernel that reads `ModelInfo` or
 * writes loss records: MAX_TERMS, the RECON_* kinds, `LossTerm`, `ModelInfo`, the `LOSS_*`
 * offsets and `term_trains` (whether a term trains a latent). Includers declare `var<storage, read> models: array<ModelInfo>` themselves.
 */
export const MODEL_TABLE_FILE: ShaderFile = {
  path: "src/sae/model_table.ts (generated)",
  code: [
    "// Generated by src/sae/model_table.ts from its record tables; edit them, not this text.",
    "// A model's loss is a list of up to MAX_TERMS terms (src/sae/loss_plan.ts): term t reconstructs",
    "// r_t = sum_{j<end} acts_j W_dec[j] + b_dec (latents below detach_below carry no gradient) and",
    "// adds recon_mult * R(r_t - x) + l1_mult * mean_b || w * acts[b, l1_start:l1_end] ||_p.",
    `const MAX_TERMS: u32 = ${MAX_TERMS}u;`,
    ...Object.entries(RECON_KIND).map(([k, v]) => `const RECON_${k.toUpperCase()}: u32 = ${v}u;`),
    recordWgsl(LOSS_TERM),
    recordWgsl(MODEL_INFO),
    recordWgsl(LOSS_RECORD),
    "/** Whether term t trains latent j: detach_below <= j < end (latents below carry no gradient). */",
    "fn term_trains(term: LossTerm, j: u32) -> bool {",
    "  return j >= term.detach_below && j < term.end;",
    "}",
  ].join("\n"),
};
