/**
 * Packs what differs between the M models of one training run (loss plan, optimiser settings,
 * data group) into the `ModelInfo` table the training kernels read (`shaders/lib/model_table.wgsl`).
 * Shapes (dIn, dSae, batch) are shared by all models of a run and are not in the table.
 */
import type { LossPlan } from "./loss_plan.ts";
import type { OptimizerSettings } from "./train_settings.ts";

/** Loss terms per model the kernels support. */
export const MAX_TERMS = 8;
/** 32-bit words per `ModelInfo` (16 header words + 8 terms of 8 words). */
export const MODEL_INFO_WORDS = 16 + MAX_TERMS * 8;

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
}

/** Packs `entries` into a `ModelInfo` array (one block of {@link MODEL_INFO_WORDS} words each). */
export function packModelTable(entries: readonly ModelEntry[]): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(entries.length * MODEL_INFO_WORDS);
  const floats = new Float32Array(words.buffer);
  entries.forEach((entry, m) => {
    const base = m * MODEL_INFO_WORDS;
    const { plan, optimizer } = entry;
    if (plan.terms.length > MAX_TERMS) {
      throw new RangeError(
        `Model ${m}: ${plan.terms.length} loss terms, at most ${MAX_TERMS} are supported`,
      );
    }
    words[base + 0] = plan.terms.length;
    floats[base + 1] = plan.lpNorm;
    words[base + 2] = plan.l1ByDecoderNorm ? 1 : 0;
    words[base + 3] = entry.applyBDecToInput ? 1 : 0;
    words[base + 4] = entry.normalizeSaeDecoder ? 1 : 0;
    floats[base + 5] = optimizer.lr;
    floats[base + 6] = optimizer.beta1;
    floats[base + 7] = optimizer.beta2;
    floats[base + 8] = optimizer.eps;
    floats[base + 9] = optimizer.clipNorm;
    words[base + 10] = entry.dataGroup;
    plan.terms.forEach((term, t) => {
      const at = base + 16 + t * 8;
      words[at + 0] = term.end;
      words[at + 1] = term.detachBelow;
      words[at + 2] = term.l1Start;
      words[at + 3] = term.l1End;
      words[at + 4] = term.reconKind === "l2" ? 1 : 0;
      floats[at + 5] = term.reconMult;
      floats[at + 6] = term.l1Mult;
    });
  });
  return words;
}

/**
 * Words per model in the losses buffer written by a training step: `[total, gradNorm,
 * recon_0..recon_7, l1_0..l1_7]` (per-term values already multiplied; gradNorm before clipping).
 */
export const LOSS_WORDS = 2 + 2 * MAX_TERMS;
/** Offset of term t's reconstruction loss in a model's loss record. */
export const lossReconSlot = (t: number): number => 2 + t;
/** Offset of term t's sparsity loss in a model's loss record. */
export const lossL1Slot = (t: number): number => 2 + MAX_TERMS + t;
