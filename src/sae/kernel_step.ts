/**
 * The kernel-per-op training step: M independent SAEs (same dIn, dSae, batch B; each with its own
 * loss plan and optimiser settings from the model table) advance one step in one compute pass of
 * small dispatches. Pipelines, bind groups and intermediates are built once by
 * {@link createKernelStep}; a step only encodes, so a trainer can encode many steps per submit.
 *
 * Data flow of one step (S = dSae, D = dIn, T = stacked loss terms, P = parameters per model;
 * every tensor has a leading model dimension [M]; `?` marks dispatches left out when no model
 * needs them; xin = x − [apply]·b_dec is read inside the products, never stored):
 *
 *   encode          row_norms           norms [S]        = ‖W_dec[j]‖
 *                   matmul NN + bias    acts [B][S]      = max(xin · W_enc + b_enc, 0)
 *                                       (latent, x = f·E, {@link encoderFormulation}: E·W_enc,
 *                                       latent_bias, max(f·(E·W_enc) + bias, 0))
 *                   topk_select?        acts keeps what TopK / BatchTopK keep (src/kernels/topk.ts;
 *                                       the rest of the step gates by acts > 0, so it trains only
 *                                       the kept activations)
 *   per-term decode direct (every model shares each term's range, see {@link sharedTermRanges}):
 *                   T × matmul NN       rg_t [B][D]      = acts[:, :end_t] · W_dec[:end_t]
 *                   stacked (otherwise):
 *                   mask_acts           stack [T·B][S]   = acts · [j < end_t]
 *                   matmul NN           rg [T·B][D]      = stack · W_dec
 *                   latent (x = f·E, shared ranges, MSE terms, {@link decoderFormulation}):
 *                   copy (before the pass)  basis[:S + 1] = [W_dec; b_dec] (basis [K][D]: W_dec,
 *                                       b_dec, −E; shaders/latent_decoder.wgsl)
 *                   matmul NT           gram[:eOff] [eOff][K] = basis[:eOff]·basisᵀ (E·Eᵀ: once)
 *                   2 × matmul          u [B][K]         = f · gram[E rows]
 *                   T × matmul NN       h_t [B][S]       = acts[:, :end_t] · gram[:end_t, :end_t]
 *   loss            sparsity_forward    l1 rows; gv, g_acts [B][S] = ∂l1/∂(w·acts), ∂l1/∂acts
 *                   recon_loss          recon rows; rg := ∂loss/∂r_t (latent: latent_recon, the
 *                                       recon rows and g_pre from gram, u, h_t)
 *                   loss_total          the loss record (recon, l1, total) from the rows
 *   backward        direct: grads cleared before the pass; per term, over its live latents
 *                   L_t = [detach_t, end_t):
 *                   T × matmul TN +=    grads W_dec[L_t] += acts[:, L_t]ᵀ · rg_t
 *                   T × matmul NT +=    g_acts[:, L_t]   += rg_t · W_dec[L_t]ᵀ (· [acts > 0])
 *                   stacked: mask_acts (bwd), matmul TN (grads W_dec = stackᵀ·rg), matmul NT
 *                   (g_stack = rg·W_decᵀ), mask_sum (g_acts += Σ_t masked g_stack_t)
 *                   latent: 2 × matmul TN (actsᵀ·acts, actsᵀ·f), latent_coeffs (Q [S + 1][K]),
 *                   matmul NN (grads W_dec = Q[:S]·basis)
 *                   sparsity_dec_grad?  grads W_dec     += (Σ_b gv·acts) · W_dec[j]/‖W_dec[j]‖
 *                   relu_backward?      g_pre [B][S]     = g_acts · [acts > 0] (none where the
 *                                       direct path's products gate g_acts by acts > 0 as they
 *                                       add to it: g_acts is then g_pre)
 *                   aux_forward?        g_pre            += the dead latents' auxiliary loss (TopK
 *                                       family; reads x, so the encoder is then direct)
 *                   matmul TN           grads W_enc      = xinᵀ · g_pre
 *                   reduce_rows         grads b_enc      = Σ_b g_pre
 *                   bdec_grad           grads b_dec      = Σ_rows rg − [apply]·W_enc·grads b_enc
 *                                       (latent: latent_bdec_grad, Q[S]·basis − the same)
 *                   aux_grad?           grads W_dec, b_dec += the auxiliary loss's; its loss slot
 *   clip            remove_parallel?    grads W_dec[j]  −= (g·W_dec[j])·W_dec[j]  (normalize_decoder)
 *                   grad_norm (2)       grad-norm slot; status = step if loss or norm not finite;
 *                                       each model's clip factor and scheduled step size
 *   Adam            adam                clip, bias-corrected Adam at t = counter + 1 (status 0)
 *                   finish_step         unit W_dec rows (normalize_decoder); counter += 1
 *                   topk_state?         BatchTopK's θ and the dead-latent counters move on
 *
 * The notebook's SAEs (two terms, decoder-norm-weighted L1, no decoder normalisation) take 20
 * dispatches either way, 16 of them forward-backward. Losses, status and step counter stay
 * on the GPU. The products are `blocked` (src/kernels/matmul.ts: 8×8 register blocks, vec4 loads)
 * wherever their sizes and offsets are multiples of 4, `block` otherwise. Every loop's trip count
 * is bounded by the sizes of the step, listed in the header of each shader.
 *
 * Matmul formulation, measured on llvmpipe (2 shared CPU cores), M = 256, B = 128, T = 2, ms per
 * dispatch for xin·W_enc, stack·W_dec, rg·W_decᵀ, stackᵀ·rg, xinᵀ·g_pre (before `blocked`):
 *   dIn 50, dSae 4, one run, machine loaded:  block 23, 25, 16, 17, 7.6; one output per invocation
 *     50, 120, 37, 41, 27; tiled 16×16 in workgroup memory 301, 637, 301, 279, 146;
 *   dIn 256, dSae 64, same run:  block 275, 827, 530, 315, 278; one output per invocation 1291,
 *     2716, 3359, 1230, 1651; tiled 3269, 7392, 3331, 3899, 3086.
 * Barriers are expensive on a CPU adapter, so the register-blocked products are barrier-free.
 *
 * Latent forms, measured on lavapipe (2 shared CPU cores) at d_in 768, d_sae 32, 32 features,
 * batch 1024, prefixes [8, 32], M = 8: a step took about 300 ms with the latent encoder and the
 * direct decoder, 33 ms with both latent (x is then never formed: the sampler skips its
 * embedding); end to end through trainToySaes, 40 steps, 24.9 → 204 SAE-steps/s.
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, uploadStorage } from "../gpu/buffers.ts";
import { type ParamLayout, paramLayout } from "./layout.ts";
import { LOSS_WORDS, MAX_TERMS, type ModelEntry, packModelTable } from "./model_table.ts";
import {
  encodeOps,
  type KernelOp,
  LOOP_LIMIT,
  requirePositive,
  requireWords,
  runOps,
  WORKGROUP,
} from "../kernels/kernel_op.ts";
import { createStepDims, type StepShape } from "../kernels/step_dims.ts";
import {
  blockedFits,
  blockedLoopIterations,
  createMatmul,
  type MatmulSpec,
  type MatmulVariant,
  residualBlocks,
} from "../kernels/matmul.ts";
import { createReduceRows } from "../kernels/bias.ts";
import { createLatentBias, createLatentWEncFix, latentEncoderWords } from "../kernels/latent.ts";
import {
  createLatentBDecGrad,
  createLatentCoeffs,
  createLatentRecon,
  latentBasis,
} from "../kernels/latent_decoder.ts";
import { createReluBackward } from "../kernels/relu.ts";
import { createTopK, topkStateWords } from "../kernels/topk.ts";
import {
  createRowNorms,
  createSparsityDecoderGrad,
  createSparsityForward,
} from "../kernels/sparsity.ts";
import { createMaskActs, createMaskSum } from "../kernels/prefix_recon.ts";
import {
  createBDecGrad,
  createLossTotal,
  createReconLoss,
  termRowsWords,
} from "../kernels/recon_loss.ts";
import {
  createAdam,
  createFinishStep,
  createGradNorm,
  createRemoveParallel,
  NORM_CHUNK,
  normScratchWords,
} from "../kernels/optimizer.ts";
import type { Schedule } from "./train_settings.ts";

/** The state a step reads and writes; a caller may supply any of them. */
export interface KernelStepBuffers {
  /** `[M][P]` f32 parameters (src/sae/layout.ts). */
  params: GPUBuffer;
  /** `[M][P]` f32 gradient of the latest step (clipped after {@link KernelStep.encodeStep}). */
  grads: GPUBuffer;
  /** `[M][P]` f32 Adam first moments. */
  adamM: GPUBuffer;
  /** `[M][P]` f32 Adam second moments. */
  adamV: GPUBuffer;
  /** `[M][B][dIn]` f32 inputs of the step (absent when encoder and decoder are both latent). */
  x?: GPUBuffer;
  /** `[M][LOSS_WORDS]` f32 loss records: total, grad norm, recon per term, l1 per term. */
  losses: GPUBuffer;
  /** `[M]` u32: 0 training, s > 0 diverged at (1-based) step s and no longer updated. */
  status: GPUBuffer;
  /** `[1]` u32: steps completed (Adam's t is this + 1). */
  counter: GPUBuffer;
  /** `[M][B][F]` f32 feature values of the rows (when a formulation is latent). */
  features?: GPUBuffer;
  /**
   * `[M][1 + dSae]` u32 TopK-family state (θ as f32 bits, the steps since each latent fired;
   * src/kernels/topk.ts), present when a model is TopK or BatchTopK.
   */
  topkState?: GPUBuffer;
}

/** Intermediates owned by the step, allocated once. */
export interface KernelStepIntermediates {
  /** `[M][B][dSae]` activations. */
  acts: GPUBuffer;
  /** `[M][dSae]` decoder row norms. */
  norms: GPUBuffer;
  /** `[M][T][B][dSae]` masked activations, forward then backward (absent on the direct path). */
  stack?: GPUBuffer;
  /** `[M][T·B][dIn]` decoded terms, then ∂loss/∂r_t (absent with the latent decoder). */
  rg?: GPUBuffer;
  /** `[M][B][dSae]` ∂loss/∂acts (∂loss/∂pre where the direct path gates its products). */
  gradActs: GPUBuffer;
}

/** Options of {@link createKernelStep}. */
export interface KernelStepOptions {
  /** One entry per model (src/sae/model_table.ts). */
  models: readonly ModelEntry[];
  /** Rows per batch B. */
  batch: number;
  /** Input width. */
  dIn: number;
  /** Latents per model. */
  dSae: number;
  /** Buffers to use instead of allocating them (checked against the shapes). */
  buffers?: Partial<KernelStepBuffers>;
  /** Learning-rate schedule shared by the models (default constant). */
  schedule?: Schedule;
  /**
   * The toy's structure, x = f·E: each model's `[F][dIn]` embedding (`[M][F][dIn]` floats, or one
   * `[F][dIn]` shared by every model) and F.
   * With it the step may encode and decode in latent form ({@link encoderFormulation},
   * {@link decoderFormulation}); when either is, it takes `buffers.features` (`[M][B][F]`, the
   * rows' feature values), and when both are, it reads no `buffers.x`.
   */
  latent?: { nFeatures: number; embedding: Float32Array };
  /** `direct` (x·W_enc), `latent` (f·(E·W_enc)) or `auto` (default: by {@link encoderFormulation}). */
  encoder?: "auto" | "direct" | "latent";
  /**
   * `direct` (acts·W_dec per term, or the stack), `latent` (the basis Gram matrix, see
   * {@link decoderFormulation}; needs shared term ranges, MSE terms and `latent`) or `auto`
   * (default: by {@link decoderFormulation} where it may run).
   */
  decoder?: "auto" | "direct" | "latent";
  /** Decode through the masked `[T·B]` stack even when the models share their term ranges. */
  stacked?: boolean;
  /** Matmul formulation (default per product: `blocked` where the sizes allow, else `block`). */
  matmulVariant?: MatmulVariant;
}

/** A compiled training step of M models. */
export interface KernelStep {
  /** Where the four tensors sit in one model's block of `layout.size` floats. */
  readonly layout: ParamLayout;
  /** Sizes of the step (`terms`: the stacked loss terms T). */
  readonly shape: StepShape;
  /** The state the step reads and writes. */
  readonly buffers: KernelStepBuffers;
  /** Intermediates of the latest step (for tests and inspection). */
  readonly intermediates: KernelStepIntermediates;
  /** How the step encodes and decodes (`direct` decoding includes the stacked path). */
  readonly formulation: { encoder: "direct" | "latent"; decoder: "direct" | "latent" };
  /** Dispatches recorded by {@link encodeForwardBackward} and by {@link encodeStep}. */
  readonly dispatches: { forwardBackward: number; step: number };
  /** The labelled ops of a whole step in dispatch order (for profiling). */
  readonly ops: readonly KernelOp[];
  /** Records forward, losses and backward: losses and raw gradients. */
  encodeForwardBackward(encoder: GPUCommandEncoder): void;
  /** Records a whole step: forward, loss, backward, clip, Adam, counter advance. */
  encodeStep(encoder: GPUCommandEncoder): void;
  /** Destroys the buffers the step allocated (not those passed in `buffers`). */
  destroy(): void;
}

/** A term slot's decoded range `[0, end)` and live range `[detachBelow, end)`. */
export interface TermRange {
  /** Latents [0, end) are decoded. */
  end: number;
  /** Latents [0, detachBelow) are decoded without gradient. */
  detachBelow: number;
}

/**
 * The term ranges of each slot when every model that has the slot's term gives it the same range
 * and no term is empty (end > 0), else null. Then the step decodes every term straight from
 * `acts` (the "direct" path: products of width end_t and end_t − detach_t, no masks or stack);
 * otherwise through the masked stack (products of width dSae for every term).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sharedTermRanges } from "./kernel_step.ts";
 * import { lossPlan } from "./loss_plan.ts";
 * import { resolveSaeConfig } from "./config.ts";
 * const entry = (beta: number) => ({
 *   plan: lossPlan(resolveSaeConfig({ dIn: 8, dSae: 8, matryoshkaSteps: [4, 8],
 *     matryoshkaInnerLossMultipliers: [beta, 1], skipOuterLoss: true })),
 *   applyBDecToInput: true, normalizeSaeDecoder: false, dataGroup: 0,
 *   optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, clipNorm: 1 },
 * });
 * assert.deepEqual(sharedTermRanges([entry(0.25), entry(0.5)]), [
 *   { end: 4, detachBelow: 0 },
 *   { end: 8, detachBelow: 0 },
 * ]);
 * assert.equal(sharedTermRanges([entry(0.25), entry(0)]), null); // β = 0 drops the inner term
 * ```
 */
export function sharedTermRanges(entries: readonly ModelEntry[]): TermRange[] | null {
  const slots: TermRange[] = [];
  for (const entry of entries) {
    for (const [t, term] of entry.plan.terms.entries()) {
      if (term.end === 0) return null;
      const slot = slots[t];
      if (!slot) slots[t] = { end: term.end, detachBelow: term.detachBelow };
      else if (slot.end !== term.end || slot.detachBelow !== term.detachBelow) return null;
    }
  }
  return slots.length > 0 ? slots : null;
}

/**
 * The most loop iterations one invocation of each kernel of the step runs, from the trip counts
 * listed in the shaders' headers (exact functions of the sizes, nested loops counted in full as
 * Mesa counts them, loops of compile-time length included in case the compiler keeps them):
 * {@link createKernelStep} refuses a shape where any exceeds {@link LOOP_LIMIT}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelLoopIterations } from "./kernel_step.ts";
 * const loops = kernelLoopIterations({ models: 1, batch: 128, dIn: 256, dSae: 64, terms: 2 });
 * assert.equal(loops.bdec_grad, 2 * 128 + 64);
 * assert.equal(kernelLoopIterations({ models: 1, batch: 128, dIn: 256, dSae: 64, terms: 2 }, 16,
 *   "latent").latent_recon, 2 * 2 * 64 + 16 + 2);
 * ```
 */
export function kernelLoopIterations(
  shape: StepShape,
  nFeatures = 0,
  decoder: "direct" | "latent" = "direct",
): Record<string, number> {
  const { batch: B, dIn: D, dSae: S, terms: T } = shape;
  const log2Wg = Math.log2(WORKGROUP);
  const latent = decoder === "latent";
  // matmul_blocked: blockedLoopIterations (2 × 2 register blocks, the MSE epilogue's sums);
  // matmul_block: one iteration per inner index. The largest inner of a step is D or B (T·B on
  // the stacked path), or F in the latent encoder, or the basis rows K in the latent decoder.
  const basisRows = latent ? latentBasis(S, nFeatures).rows : 0;
  const inner = Math.max(D, T * B, S, nFeatures, basisRows);
  const matmul = Math.max(blockedLoopIterations(inner, { rows: 2, cols: 2 }, true), inner);
  return {
    matmul,
    row_norms: D,
    sparsity_forward: 2 * S + 2 * T * S,
    sparsity_decoder_grad: B + D,
    recon_loss: 2 * D,
    loss_total: MAX_TERMS + 2 * T * (Math.ceil(B / WORKGROUP) + log2Wg),
    mask_acts: 0,
    mask_sum: T,
    relu_backward: 0,
    reduce_rows: B,
    bdec_grad: T * B + S,
    remove_parallel: 2 * D,
    grad_norm_partial: NORM_CHUNK / WORKGROUP + log2Wg,
    // The chunks' partial sums, the reduction, and two pow_int loops of at most 32 (β1^t, β2^t).
    grad_norm: Math.ceil(Math.ceil(paramLayout(D, S).size / NORM_CHUNK) / WORKGROUP) + log2Wg + 64,
    adam: 4,
    finish_step: 2 * D,
    latent_bias: D,
    latent_wenc_fix: S,
    ...(latent
      ? {
        latent_recon: 2 * T * S + nFeatures + T,
        latent_coeffs: B + T,
        latent_bdec_grad: basisRows + S,
      }
      : {}),
  };
}

/**
 * How the step encodes, from the multiply-adds of the encoder and its W_enc gradient: `direct`
 * (x·W_enc and xᵀ·g_pre: 2·B·D·S) or `latent` (E·W_enc and Eᵀ·(Fᵀ·g_pre) with the rows' features:
 * 2·F·S·(D + B), plus two small passes). Latent when it needs at most half the multiply-adds,
 * F·(D + B) ≤ B·D / 2: it pays when the input is much wider than the features (SAELens-style toy
 * worlds of 16–32 features in hundreds of dimensions), not at the bench's larger toy (F 64,
 * D 256, B 128: 24,576 vs 16,384).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encoderFormulation } from "./kernel_step.ts";
 * assert.equal(encoderFormulation({ batch: 1024, dIn: 768 }, 32), "latent");
 * assert.equal(encoderFormulation({ batch: 128, dIn: 256 }, 64), "direct");
 * ```
 */
export function encoderFormulation(
  shape: { batch: number; dIn: number },
  nFeatures: number,
): "direct" | "latent" {
  return nFeatures * (shape.dIn + shape.batch) <= shape.batch * shape.dIn / 2 ? "latent" : "direct";
}

/**
 * How the step decodes its MSE terms when every model shares the term ranges `terms` (the direct
 * path), from their multiply-adds: `direct` (acts[:, :end_t]·W_dec, its W_dec gradient over the
 * live latents and ∂loss/∂acts: B·D·Σ_t (end_t + 2·live_t)) or `latent` (x = f·E: every residual
 * is c·basis over the K basis rows W_dec, b_dec, −E of {@link latentBasis}; the Gram matrix
 * basis·basisᵀ but its constant E·Eᵀ block, u = f·gram[E rows], h_t = acts[:, :end_t]·gram,
 * actsᵀ·[acts, f], and grads [W_dec; b_dec] = coefficients·basis:
 * (K² − F_K² + (S + 1)·K)·D + B·(F·K + S·(S + F) + Σ_t end_t²), F_K = K − eOff, plus two small
 * passes). Latent when it needs at most half the multiply-adds: it pays when the input is wide
 * and S + F small (F 32, S 32, D 768, B 1024: 9.9M against 94M), not at the bench's larger toy
 * or `synth`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decoderFormulation } from "./kernel_step.ts";
 * const terms = [{ end: 8, detachBelow: 0 }, { end: 32, detachBelow: 0 }];
 * assert.equal(decoderFormulation({ batch: 1024, dIn: 768, dSae: 32 }, terms, 32), "latent");
 * const toy = [{ end: 8, detachBelow: 0 }, { end: 64, detachBelow: 0 }];
 * assert.equal(decoderFormulation({ batch: 128, dIn: 256, dSae: 64 }, toy, 64), "direct");
 * ```
 */
export function decoderFormulation(
  shape: { batch: number; dIn: number; dSae: number },
  terms: readonly TermRange[],
  nFeatures: number,
): "direct" | "latent" {
  const { batch: B, dIn: D, dSae: S } = shape;
  const { eOff, rows: K } = latentBasis(S, nFeatures);
  const sum = (f: (t: TermRange) => number) => terms.reduce((n, t) => n + f(t), 0);
  const direct = B * D * sum((t) => t.end + 2 * (t.end - t.detachBelow));
  const latent = (K * K - (K - eOff) ** 2 + (S + 1) * K) * D +
    B * (nFeatures * K + S * (S + nFeatures) + sum((t) => t.end * t.end));
  return latent <= direct / 2 ? "latent" : "direct";
}

/**
 * The encoder and decoder formulations of a step: the ones asked for, or by
 * {@link encoderFormulation} and {@link decoderFormulation} (`auto`, the default). Latent forms
 * need the toy's features (`nFeatures` > 0); the latent decoder also needs shared term ranges
 * (not `stacked`) and MSE terms only.
 *
 * @throws {RangeError} for a latent form asked for where it cannot run.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelFormulations } from "./kernel_step.ts";
 * assert.deepEqual(kernelFormulations({ models: [], batch: 128, dIn: 256, dSae: 64, nFeatures: 0 }),
 *   { encoder: "direct", decoder: "direct" });
 * ```
 */
export function kernelFormulations(
  options: Pick<KernelStepOptions, "models" | "batch" | "dIn" | "dSae" | "stacked"> & {
    nFeatures: number;
    encoder?: KernelStepOptions["encoder"];
    decoder?: KernelStepOptions["decoder"];
  },
): { encoder: "direct" | "latent"; decoder: "direct" | "latent" } {
  const { batch: B, dIn: D, dSae: S, nFeatures: F } = options;
  const terms = options.stacked ? null : sharedTermRanges(options.models);
  const latentDecodes = F > 0 && terms !== null &&
    options.models.every((e) => e.plan.terms.every((t) => t.reconKind === "mse"));
  // The TopK family's auxiliary loss reads x: the direct encoder forms it.
  const needsX = options.models.some((e) => (e.topk?.auxCoefficient ?? 0) > 0);
  const encoder = options.encoder === "latent" || options.encoder === "direct"
    ? options.encoder
    : F > 0 && !needsX
    ? encoderFormulation({ batch: B, dIn: D }, F)
    : "direct";
  const decoder = options.decoder === "latent" || options.decoder === "direct"
    ? options.decoder
    : latentDecodes
    ? decoderFormulation({ batch: B, dIn: D, dSae: S }, terms!, F)
    : "direct";
  if ((encoder === "latent" || decoder === "latent") && F === 0) {
    throw new RangeError(`a latent encoder or decoder needs options.latent (the embedding and F)`);
  }
  if (encoder === "latent" && decoder === "latent" && needsX) {
    throw new RangeError(
      `the auxiliary loss of TopK-family models reads x: use a direct encoder or decoder`,
    );
  }
  if (decoder === "latent" && !latentDecodes) {
    throw new RangeError(
      `decoder "latent" needs every model to share its term ranges (no stacked path) and MSE terms`,
    );
  }
  return { encoder, decoder };
}

/**
 * Builds the pipelines, buffers and bind groups of one training step of `options.models`.
 *
 * @throws {RangeError} for invalid sizes, a model with more than MAX_TERMS terms, a term outside
 *   [0, dSae], or a supplied buffer smaller than its shape.
 */
export async function createKernelStep(gpu: Gpu, options: KernelStepOptions): Promise<KernelStep> {
  const { models: entries, batch: B, dIn: D, dSae: S } = options;
  requirePositive("models.length", entries.length);
  requirePositive("batch", B);
  requirePositive("dIn", D);
  requirePositive("dSae", S);
  entries.forEach((entry, m) => {
    entry.plan.terms.forEach((t, i) => {
      const bad = [t.end, t.detachBelow, t.l1Start, t.l1End].some((v) =>
        !Number.isInteger(v) || v < 0 || v > S
      );
      if (bad) {
        throw new RangeError(
          `Model ${m}, loss term ${i}: end, detachBelow, l1Start and l1End must be integers in ` +
            `[0, dSae = ${S}], got ${t.end}, ${t.detachBelow}, ${t.l1Start}, ${t.l1End}`,
        );
      }
    });
  });
  const M = entries.length;
  const anyTopK = entries.some((e) => e.topk !== undefined);
  const T = Math.max(1, ...entries.map((e) => e.plan.terms.length));
  if (T > MAX_TERMS) {
    throw new RangeError(`models: at most ${MAX_TERMS} loss terms per model, got ${T}`);
  }
  const shape: StepShape = { models: M, batch: B, dIn: D, dSae: S, terms: T };
  const F = options.latent?.nFeatures ?? 0;
  const terms = options.stacked ? null : sharedTermRanges(entries);
  const { encoder, decoder } = kernelFormulations({ ...options, nFeatures: F });
  const anyLatent = encoder === "latent" || decoder === "latent";
  for (const [kernel, loops] of Object.entries(kernelLoopIterations(shape, F, decoder))) {
    if (loops > LOOP_LIMIT) {
      throw new RangeError(
        `kernel set: ${kernel} would run ${loops} loop iterations per invocation for batch ${B}, ` +
          `dIn ${D}, dSae ${S} and ${T} terms; Mesa's CPU adapters stop an invocation after ` +
          `${LOOP_LIMIT}: use a smaller batch, dIn or dSae`,
      );
    }
  }
  const layout = paramLayout(D, S);
  const P = layout.size;
  const owned: GPUBuffer[] = [];
  const own = (label: string, words: number): GPUBuffer => {
    const buffer = createStorage(gpu, label, words * 4);
    owned.push(buffer);
    return buffer;
  };
  const given = options.buffers ?? {};
  const state = (name: keyof KernelStepBuffers, words: number): GPUBuffer => {
    const buffer = given[name];
    if (!buffer) return own(name, words);
    requireWords(name, buffer, words);
    return buffer;
  };
  const buffers: KernelStepBuffers = {
    params: state("params", M * P),
    grads: state("grads", M * P),
    adamM: state("adamM", M * P),
    adamV: state("adamV", M * P),
    losses: state("losses", M * LOSS_WORDS),
    status: state("status", M),
    counter: state("counter", 1),
    ...(encoder === "direct" || decoder === "direct" ? { x: state("x", M * B * D) } : {}),
    ...(anyLatent ? { features: state("features", M * B * F) } : {}),
    ...(anyTopK ? { topkState: state("topkState", M * topkStateWords(S)) } : {}),
  };
  const upload = (label: string, data: Float32Array<ArrayBuffer> | Uint32Array<ArrayBuffer>) => {
    const buffer = uploadStorage(gpu, label, data);
    owned.push(buffer);
    return buffer;
  };
  const models = upload("models", packModelTable(entries));
  const anyApply = entries.some((e) => e.applyBDecToInput);
  const anyByNorm = entries.some((e) => e.plan.l1ByDecoderNorm);
  const anyNormalize = entries.some((e) => e.normalizeSaeDecoder);
  const inter: KernelStepIntermediates = {
    acts: own("acts", M * B * S),
    norms: own("norms", M * S),
    ...(terms ? {} : { stack: own("stack", M * T * B * S) }),
    ...(decoder === "direct" ? { rg: own("rg", M * T * B * D) } : {}),
    gradActs: own("gradActs", M * B * S),
  };
  const gv = own("gv", M * B * S);
  const termRows = own("termRows", termRowsWords(shape));
  let gated = false;
  const dims = createStepDims(gpu, shape);
  const { params, grads } = buffers;
  const variant = options.matmulVariant ? { variant: options.matmulVariant } : {};
  // The epilogues that only `blocked` has (MSE, gate) are used where every product may be blocked.
  const blockedAllowed = (options.matmulVariant ?? "blocked") === "blocked";
  const param = (offset: number) => ({ buffer: params, offset, stride: P });
  const grad = (offset: number) => ({ buffer: grads, offset, stride: P });
  const common = { shape, dims, models };

  const forwardBackward: KernelOp[] = [];
  const add = (op: KernelOp) => forwardBackward.push(op);
  // encode
  add(await createRowNorms(gpu, { shape, dims, params, norms: inter.norms }));
  // x − [apply]·b_dec is read inside the products (A_SHIFT), never stored.
  const xIn = encoder === "latent" ? null : {
    a: { buffer: buffers.x!, stride: B * D },
    ...(anyApply
      ? {
        shift: {
          buffer: params,
          offset: layout.bDec,
          stride: P,
          scales: upload(
            "apply scales",
            new Float32Array(entries.map((e) => e.applyBDecToInput ? 1 : 0)),
          ),
        },
      }
      : {}),
  };
  const embedding = options.latent?.embedding;
  if (anyLatent && embedding!.length !== M * F * D && embedding!.length !== F * D) {
    throw new RangeError(
      `latent.embedding: expected M·F·dIn = ${M * F * D} floats (or F·dIn = ${F * D}, one ` +
        `shared by every model), got ${embedding!.length}`,
    );
  }
  const embeddingStride = embedding?.length === F * D ? 0 : F * D;
  let latentOps: { embedding: GPUBuffer; ew: GPUBuffer; h: GPUBuffer } | null = null;
  if (encoder === "latent") {
    // acts = ReLU(f·(E·W_enc) + b_enc − [apply]·b_dec·W_enc): E·W_enc and its bias row per model.
    const perModel = latentEncoderWords(F, S);
    latentOps = {
      embedding: upload("embeddings [M][F][D]", Float32Array.from(embedding!)),
      ew: own("E·W_enc and bias [M][F + 1][S]", M * perModel),
      h: own("Fᵀ·g_pre [M][F][S]", M * F * S),
    };
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: F,
        cols: S,
        inner: D,
        a: { buffer: latentOps.embedding, stride: embeddingStride },
        b: param(layout.wEnc),
        c: { buffer: latentOps.ew, stride: perModel },
        ...variant,
        label: "E·W_enc",
      }),
    );
    add(await createLatentBias(gpu, { ...common, params, ew: latentOps.ew, nFeatures: F }));
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: B,
        cols: S,
        inner: F,
        a: { buffer: buffers.features!, stride: B * F },
        b: { buffer: latentOps.ew, stride: perModel },
        bias: { offset: F * S, stride: perModel },
        c: { buffer: inter.acts, stride: B * S },
        ...variant,
        label: "ReLU(f·(E·W_enc) + b)",
      }),
    );
  } else {
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: B,
        cols: S,
        inner: D,
        ...xIn!,
        b: param(layout.wEnc),
        bias: { offset: layout.bEnc, stride: P },
        c: { buffer: inter.acts, stride: B * S },
        ...variant,
        label: "ReLU(xin·W_enc + b_enc)",
      }),
    );
  }
  // TopK family: the selection runs here, on the ReLU outputs (inserted once its ops are built).
  const selectAt = forwardBackward.length;
  // per-term decode
  const fusedTerms: number[] = [];
  const reconParts = residualBlocks(B, D);
  let reconPartsBuffer: GPUBuffer | null = null;
  const basis = latentBasis(S, F);
  const K = basis.rows;
  let latentDec:
    | Record<
      "basis" | "gram" | "u" | "h" | "saa" | "saf" | "coeffs",
      GPUBuffer
    >
    | null = null;
  if (decoder === "latent") {
    // Each model's basis [K][D]: W_dec and b_dec (copied from params at the start of every step),
    // zeros, −E (uploaded once), zeros; gram = basis·basisᵀ: its rows [0, eOff) every step, its
    // E·Eᵀ block once, and its block [E rows][0, eOff) never (u reads its transpose).
    const rows = new Float32Array(M * K * D);
    for (let m = 0; m < M; m++) {
      const e = embedding!.subarray(embeddingStride * m, embeddingStride * m + F * D);
      for (let i = 0; i < F * D; i++) rows[(m * K + basis.eOff) * D + i] = -e[i]!;
    }
    latentDec = {
      basis: upload("decoder basis [M][K][D]", rows),
      gram: own("basis Gram [M][K][K]", M * K * K),
      u: own("f·gram[E rows] [M][B][K]", M * B * K),
      h: own("acts[:, :end_t]·gram [M][T][B][S]", M * T * B * S),
      saa: own("actsᵀ·acts [M][S][S]", M * S * S),
      saf: own("actsᵀ·f [M][S][F]", M * S * F),
      coeffs: own("decoder gradient coefficients [M][S + 1][K]", M * (S + 1) * K),
    };
    const basisRows = (first: number): MatmulSpec["a"] => ({
      buffer: latentDec!.basis,
      offset: first * D,
      stride: K * D,
    });
    const gramBlock = (row: number, col: number) => ({
      buffer: latentDec!.gram,
      offset: row * K + col,
      stride: K * K,
      ld: K,
    });
    const gramProduct = (row: number, rows: number, col: number, cols: number, label: string) =>
      createMatmul(gpu, {
        batch: M,
        rows,
        cols,
        inner: D,
        transB: true,
        a: basisRows(row),
        b: basisRows(col),
        c: gramBlock(row, col),
        ...variant,
        label,
      });
    const fk = K - basis.eOff;
    const once = await gramProduct(basis.eOff, fk, basis.eOff, fk, "E·Eᵀ (once)");
    await runOps(gpu, [once], "the decoder basis's E·Eᵀ");
    once.destroy();
    add(await gramProduct(0, basis.eOff, 0, K, "[W_dec; b_dec]·basisᵀ"));
    // u = f·gram[E rows]: columns [0, eOff) from the symmetric block above, then the E columns.
    for (const [col, cols, transB] of [[0, basis.eOff, true], [basis.eOff, fk, false]] as const) {
      add(
        await createMatmul(gpu, {
          batch: M,
          rows: B,
          cols,
          inner: F,
          transB,
          a: { buffer: buffers.features!, stride: B * F },
          b: transB ? gramBlock(0, basis.eOff) : gramBlock(basis.eOff, basis.eOff),
          c: { buffer: latentDec.u, offset: col, stride: B * K, ld: K },
          ...variant,
          label: `f·gram[E rows, ${col}:${col + cols}]`,
        }),
      );
    }
    for (const [t, { end }] of terms!.entries()) {
      add(
        await createMatmul(gpu, {
          batch: M,
          rows: B,
          cols: end,
          inner: end,
          a: { buffer: inter.acts, stride: B * S, ld: S },
          b: gramBlock(0, 0),
          c: { buffer: latentDec.h, offset: t * B * S, stride: T * B * S, ld: S },
          ...variant,
          label: `acts[:, :${end}]·gram[:${end}, :${end}] (term ${t})`,
        }),
      );
    }
  } else if (terms) {
    // Term t decodes latents [0, end_t) of acts directly (every model shares the term's range).
    // Where every model's term t is an MSE and the sizes allow `blocked`, the product's epilogue
    // also forms e = decoded + b_dec − x, writes ∂loss/∂r_t = 2·mult/B · e and Σ e² per row.
    for (const [t, term] of terms.entries()) {
      const decode: MatmulSpec = {
        batch: M,
        rows: B,
        cols: D,
        inner: term.end,
        a: { buffer: inter.acts, stride: B * S, ld: S },
        b: param(layout.wDec),
        c: { buffer: inter.rg!, offset: t * B * D, stride: T * B * D },
        ...variant,
        label: `acts[:, :${term.end}]·W_dec (term ${t})`,
      };
      const mse = entries.every((e) => (e.plan.terms[t]?.reconKind ?? "mse") === "mse");
      if (mse && blockedAllowed && blockedFits(decode)) {
        fusedTerms.push(t);
        reconPartsBuffer ??= own("reconParts", M * T * B * reconParts);
        Object.assign(decode, {
          bias: { offset: layout.bDec, stride: P },
          residual: {
            target: { buffer: buffers.x!, stride: B * D },
            scales: upload(
              `MSE coefficients (term ${t})`,
              new Float32Array(entries.map((e) => 2 * (e.plan.terms[t]?.reconMult ?? 0) / B)),
            ),
            rowSq: {
              buffer: reconPartsBuffer!,
              offset: t * B * reconParts,
              stride: T * B * reconParts,
            },
          },
          label: `acts[:, :${term.end}]·W_dec + b_dec − x (term ${t}, MSE)`,
        });
      }
      add(await createMatmul(gpu, decode));
    }
  } else {
    add(
      await createMaskActs(gpu, {
        ...common,
        acts: inter.acts,
        stack: inter.stack!,
        backward: false,
      }),
    );
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: T * B,
        cols: D,
        inner: S,
        a: { buffer: inter.stack!, stride: T * B * S },
        b: param(layout.wDec),
        c: { buffer: inter.rg!, stride: T * B * D },
        ...variant,
        label: "stack·W_dec",
      }),
    );
  }
  // loss
  add(
    await createSparsityForward(gpu, {
      ...common,
      acts: inter.acts,
      norms: inter.norms,
      gv,
      gradActs: inter.gradActs,
      termRows,
    }),
  );
  if (latentDec) {
    add(
      await createLatentRecon(gpu, {
        ...common,
        nFeatures: F,
        acts: inter.acts,
        features: buffers.features!,
        gram: latentDec.gram,
        u: latentDec.u,
        h: latentDec.h,
        gradActs: inter.gradActs,
        termRows,
      }),
    );
  } else if (fusedTerms.length < T) {
    add(
      await createReconLoss(gpu, {
        ...common,
        x: buffers.x!,
        params,
        rg: inter.rg!,
        termRows,
        fusedTerms,
      }),
    );
  }
  add(
    await createLossTotal(gpu, {
      ...common,
      termRows,
      losses: buffers.losses,
      ...(fusedTerms.length > 0
        ? { fused: { terms: fusedTerms, parts: reconParts, reconParts: reconPartsBuffer! } }
        : {}),
    }),
  );
  // backward
  const decoderGradient = async () => {
    if (!anyByNorm) return;
    add(
      await createSparsityDecoderGrad(gpu, {
        ...common,
        params,
        acts: inter.acts,
        norms: inter.norms,
        gv,
        grads,
      }),
    );
  };
  if (latentDec) {
    // grads [W_dec; b_dec] = coefficients·basis (latent_decoder.wgsl) from actsᵀ·[acts, f];
    // latent_recon already formed ∂loss/∂pre.
    const { saa, saf, coeffs } = latentDec;
    for (
      const [other, width, c, label] of [
        [inter.acts, S, saa, "actsᵀ·acts"],
        [buffers.features!, F, saf, "actsᵀ·f"],
      ] as const
    ) {
      add(
        await createMatmul(gpu, {
          batch: M,
          rows: S,
          cols: width,
          inner: B,
          transA: true,
          a: { buffer: inter.acts, stride: B * S },
          b: { buffer: other, stride: B * width },
          c: { buffer: c, stride: S * width },
          ...variant,
          label,
        }),
      );
    }
    add(
      await createLatentCoeffs(gpu, {
        ...common,
        nFeatures: F,
        acts: inter.acts,
        features: buffers.features!,
        saa,
        saf,
        coeffs,
      }),
    );
    // grads b_dec (coefficient row S) is formed with the encoder's part at the end.
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: S,
        cols: D,
        inner: K,
        a: { buffer: coeffs, stride: (S + 1) * K },
        b: { buffer: latentDec.basis, stride: K * D },
        c: { buffer: grads, offset: layout.wDec, stride: P },
        ...variant,
        label: "grads W_dec = coefficients[:S]·basis",
      }),
    );
    await decoderGradient();
    gated = true;
  } else if (terms) {
    // grads W_dec starts cleared (encode below); each term adds its live rows [detach_t, end_t)
    // and its part of ∂loss/∂acts over the same latents.
    for (const [t, { end, detachBelow: lo }] of terms.entries()) {
      if (end === lo) continue;
      add(
        await createMatmul(gpu, {
          batch: M,
          rows: end - lo,
          cols: D,
          inner: B,
          transA: true,
          accumulate: true,
          a: { buffer: inter.acts, offset: lo, stride: B * S, ld: S },
          b: { buffer: inter.rg!, offset: t * B * D, stride: T * B * D },
          c: { buffer: grads, offset: layout.wDec + lo * D, stride: P },
          ...variant,
          label: `acts[:, ${lo}:${end}]ᵀ·g_r (term ${t})`,
        }),
      );
    }
    await decoderGradient();
    // ∂loss/∂acts per term; where the products are blocked each is gated by acts > 0 as it is
    // added, so the result is already ∂loss/∂pre (the ReLU's backward needs no pass of its own).
    const products: MatmulSpec[] = terms.flatMap(({ end, detachBelow: lo }, t) =>
      end === lo ? [] : [{
        batch: M,
        rows: B,
        cols: end - lo,
        inner: D,
        transB: true,
        accumulate: true,
        a: { buffer: inter.rg!, offset: t * B * D, stride: T * B * D },
        b: { buffer: params, offset: layout.wDec + lo * D, stride: P },
        c: { buffer: inter.gradActs, offset: lo, stride: B * S, ld: S },
        ...variant,
        label: `g_r·W_dec[${lo}:${end}]ᵀ (term ${t})`,
      }]
    );
    // The gate reads acts at g_acts's offsets and pitch, so it fits wherever the product does.
    gated = blockedAllowed && products.every((p) => blockedFits(p));
    for (const product of products) {
      if (gated) {
        product.gate = { ...product.c, buffer: inter.acts };
        product.label += " · [acts > 0]";
      }
      add(await createMatmul(gpu, product));
    }
  } else {
    add(
      await createMaskActs(gpu, {
        ...common,
        acts: inter.acts,
        stack: inter.stack!,
        backward: true,
      }),
    );
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: S,
        cols: D,
        inner: T * B,
        transA: true,
        a: { buffer: inter.stack!, stride: T * B * S },
        b: { buffer: inter.rg!, stride: T * B * D },
        c: grad(layout.wDec),
        ...variant,
        label: "stackᵀ·g_r",
      }),
    );
    await decoderGradient();
    const gradStack = own("gradStack", M * T * B * S);
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: T * B,
        cols: S,
        inner: D,
        transB: true,
        a: { buffer: inter.rg!, stride: T * B * D },
        b: param(layout.wDec),
        c: { buffer: gradStack, stride: T * B * S },
        ...variant,
        label: "g_r·W_decᵀ",
      }),
    );
    add(await createMaskSum(gpu, { ...common, gradStack, gradActs: inter.gradActs }));
  }
  const gradPre = gated ? inter.gradActs : own("gradPre", M * B * S);
  if (!gated) {
    add(
      await createReluBackward(gpu, {
        count: M * B * S,
        gradActs: inter.gradActs,
        acts: inter.acts,
        gradPre,
      }),
    );
  }
  // TopK family: the selection after the encoder; the auxiliary loss adds to g_pre here and to
  // the W_dec and b_dec gradients after their last write; the state moves on after Adam.
  const topk = anyTopK
    ? await createTopK(gpu, {
      models: entries,
      batch: B,
      dSae: S,
      acts: inter.acts,
      state: buffers.topkState!,
      status: buffers.status,
      ...(buffers.x
        ? {
          aux: { dIn: D, layout, params, x: buffers.x, gradPre, grads, losses: buffers.losses },
        }
        : {}),
    })
    : null;
  if (topk) {
    forwardBackward.splice(selectAt, 0, topk.select);
    if (topk.auxForward) add(topk.auxForward);
  }
  if (latentOps) {
    // grads W_enc = Eᵀ·(Fᵀ·g_pre) − [apply]·b_dec ⊗ Σ_b g_pre.
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: F,
        cols: S,
        inner: B,
        transA: true,
        a: { buffer: buffers.features!, stride: B * F },
        b: { buffer: gradPre, stride: B * S },
        c: { buffer: latentOps.h, stride: F * S },
        ...variant,
        label: "fᵀ·g_pre",
      }),
    );
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: D,
        cols: S,
        inner: F,
        transA: true,
        a: { buffer: latentOps.embedding, stride: embeddingStride },
        b: { buffer: latentOps.h, stride: F * S },
        c: grad(layout.wEnc),
        ...variant,
        label: "Eᵀ·(fᵀ·g_pre)",
      }),
    );
  } else {
    add(
      await createMatmul(gpu, {
        batch: M,
        rows: D,
        cols: S,
        inner: B,
        transA: true,
        ...xIn!,
        b: { buffer: gradPre, stride: B * S },
        c: grad(layout.wEnc),
        ...variant,
        label: "xinᵀ·g_pre",
      }),
    );
  }
  add(
    await createReduceRows(gpu, {
      batch: M,
      rows: B,
      cols: S,
      src: gradPre,
      sums: grad(layout.bEnc),
      label: "Σ_b g_pre",
    }),
  );
  if (latentOps && anyApply) {
    add(await createLatentWEncFix(gpu, { ...common, params, grads }));
  }
  if (!latentDec) {
    add(await createBDecGrad(gpu, { ...common, params, rg: inter.rg!, grads }));
  } else {
    add(
      await createLatentBDecGrad(gpu, {
        ...common,
        nFeatures: F,
        coeffs: latentDec.coeffs,
        basis: latentDec.basis,
        params,
        grads,
      }),
    );
  }

  if (topk?.auxGrad) add(topk.auxGrad);

  const optimizer = {
    ...buffers,
    ...common,
    normScratch: own("normScratch", normScratchWords(shape)),
    ...(options.schedule ? { schedule: options.schedule } : {}),
  };
  const update: KernelOp[] = [];
  if (anyNormalize) update.push(await createRemoveParallel(gpu, optimizer));
  update.push(await createGradNorm(gpu, optimizer));
  update.push(await createAdam(gpu, optimizer));
  update.push(await createFinishStep(gpu, optimizer));
  if (topk) update.push(topk.update);
  const step = [...forwardBackward, ...update];

  // The latent decoder's basis takes each model's W_dec and b_dec (contiguous) before the pass.
  const copyBasis = (encoder: GPUCommandEncoder) => {
    if (!latentDec) return;
    for (let m = 0; m < M; m++) {
      encoder.copyBufferToBuffer(
        params,
        (m * P + layout.wDec) * 4,
        latentDec.basis,
        m * K * D * 4,
        (S + 1) * D * 4,
      );
    }
  };
  return {
    layout,
    shape,
    formulation: { encoder, decoder },
    buffers,
    intermediates: inter,
    dispatches: {
      forwardBackward: forwardBackward.reduce((n, op) => n + op.dispatches, 0),
      step: step.reduce((n, op) => n + op.dispatches, 0),
    },
    ops: step,
    encodeForwardBackward(encoder) {
      if (terms) encoder.clearBuffer(grads);
      copyBasis(encoder);
      encodeOps(encoder, forwardBackward, "forward-backward");
    },
    encodeStep(encoder) {
      if (terms) encoder.clearBuffer(grads);
      copyBasis(encoder);
      encodeOps(encoder, step, "training step");
    },
    destroy: () => {
      for (const op of step) op.destroy();
      for (const buffer of owned) buffer.destroy();
      dims.destroy();
    },
  };
}
