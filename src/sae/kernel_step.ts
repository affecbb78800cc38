/**
 * The kernel-per-op training step: M independent SAEs (same dIn, dSae, batch B; each with its own
 * loss plan and optimiser settings from the model table) advance one step in one compute pass of
 * small dispatches. Pipelines, bind groups and intermediates are built once by
 * {@link createKernelStep}; a step only encodes, so a trainer can encode many steps per submit.
 *
 * Data flow of one step (S = dSae, D = dIn, T = stacked loss terms, P = parameters per model;
 * every tensor has a leading model dimension [M]; `?` marks dispatches left out when no model
 * needs them):
 *
 *   encode          1  row_norms           norms [S]        = ‖W_dec[j]‖
 *                   2? add_bias            xin [B][D]       = x − [apply]·b_dec
 *                   3  matmul NN + epilogue acts [B][S]     = max(xin · W_enc + b_enc, 0)
 *   per-term decode 4  mask_acts           stack [T·B][S]   = acts · [j < end_t]
 *                   5  matmul NN           rg [T·B][D]      = stack · W_dec
 *   loss            6  sparsity_forward    l1 slots; gv, g_acts [B][S] = ∂l1/∂(w·acts), ∂l1/∂acts
 *                   7  recon_loss          recon slots, total; rg := ∂loss/∂r_t
 *   backward        8  mask_acts (bwd)     stack [T·B][S]   = acts · [detach_t ≤ j < end_t]
 *                   9  matmul TN           grads W_dec      = stackᵀ · rg
 *                  10? sparsity_dec_grad   grads W_dec     += (Σ_b gv·acts) · W_dec[j]/‖W_dec[j]‖
 *                  11  matmul NT           g_stack [T·B][S] = rg · W_decᵀ
 *                  12  mask_sum            g_acts          += Σ_t [detach_t ≤ j < end_t] · g_stack_t
 *                  13  relu_backward       g_pre [B][S]     = g_acts · [acts > 0]
 *                  14  matmul TN           grads W_enc      = xinᵀ · g_pre
 *                  15  reduce_rows         grads b_enc      = Σ_b g_pre
 *                  16  bdec_grad           grads b_dec      = Σ_rows rg − [apply]·W_enc·grads b_enc
 *   clip           17? remove_parallel     grads W_dec[j]  −= (g·W_dec[j])·W_dec[j]  (normalize_decoder)
 *                  18  grad_norm           grad-norm slot; status = step if loss or norm not finite
 *   Adam           19  adam                clip, bias-corrected Adam at t = counter + 1 (status 0)
 *                  20  finish_step         unit W_dec rows (normalize_decoder); counter += 1
 *
 * {@link KernelStep.encodeForwardBackward} records 1–16, {@link KernelStep.encodeStep} 1–20: 19
 * dispatches for the notebook's SAEs (b_dec applied to the input, decoder-norm-weighted L1, no
 * decoder normalisation), 20 at most, 17 at least. Losses, status and step counter stay on the GPU.
 * The products are `blocked` (src/kernels/matmul.ts: 8×8 register blocks, vec4 loads) wherever
 * dIn, dSae and the batch are multiples of 4, `block` otherwise.
 *
 * Matmul formulation, measured on llvmpipe (2 shared CPU cores), M = 256, B = 128, T = 2, ms per
 * dispatch for xin·W_enc, stack·W_dec, rg·W_decᵀ, stackᵀ·rg, xinᵀ·g_pre (before `blocked`):
 *   dIn 50, dSae 4, one run, machine loaded:  block 23, 25, 16, 17, 7.6; one output per invocation
 *     50, 120, 37, 41, 27; tiled 16×16 in workgroup memory 301, 637, 301, 279, 146;
 *   dIn 256, dSae 64, same run:  block 275, 827, 530, 315, 278; one output per invocation 1291,
 *     2716, 3359, 1230, 1651; tiled 3269, 7392, 3331, 3899, 3086.
 * Barriers are expensive on a CPU adapter, so the register-blocked products are barrier-free.
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, uploadStorage } from "../gpu/buffers.ts";
import { type ParamLayout, paramLayout } from "./layout.ts";
import { LOSS_WORDS, MAX_TERMS, type ModelEntry, packModelTable } from "./model_table.ts";
import { encodeOps, type KernelOp, requirePositive, requireWords } from "../kernels/kernel_op.ts";
import { createStepDims, type StepShape } from "../kernels/step_dims.ts";
import { createMatmul, type MatmulVariant } from "../kernels/matmul.ts";
import { createAddBias, createReduceRows } from "../kernels/bias.ts";
import { createReluBackward } from "../kernels/relu.ts";
import {
  createRowNorms,
  createSparsityDecoderGrad,
  createSparsityForward,
} from "../kernels/sparsity.ts";
import { createMaskActs, createMaskSum } from "../kernels/prefix_recon.ts";
import { createBDecGrad, createReconLoss } from "../kernels/recon_loss.ts";
import {
  createAdam,
  createFinishStep,
  createGradNorm,
  createRemoveParallel,
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
  /** `[M][B][dIn]` f32 inputs of the step. */
  x: GPUBuffer;
  /** `[M][LOSS_WORDS]` f32 loss records: total, grad norm, recon per term, l1 per term. */
  losses: GPUBuffer;
  /** `[M]` u32: 0 training, s > 0 diverged at (1-based) step s and no longer updated. */
  status: GPUBuffer;
  /** `[1]` u32: steps completed (Adam's t is this + 1). */
  counter: GPUBuffer;
}

/** Intermediates owned by the step, allocated once. */
export interface KernelStepIntermediates {
  /** `[M][B][dIn]` encoder input `x − [apply]·b_dec` (absent when no model applies b_dec). */
  xIn?: GPUBuffer;
  /** `[M][B][dSae]` activations. */
  acts: GPUBuffer;
  /** `[M][dSae]` decoder row norms. */
  norms: GPUBuffer;
  /** `[M][T][B][dSae]` masked activations (forward, then backward mask). */
  stack: GPUBuffer;
  /** `[M][T·B][dIn]` decoded terms, then ∂loss/∂r_t. */
  rg: GPUBuffer;
  /** `[M][B][dSae]` ∂loss/∂acts. */
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
  /** Dispatches recorded by {@link encodeForwardBackward} and by {@link encodeStep}. */
  readonly dispatches: { forwardBackward: number; step: number };
  /** The labelled ops of a whole step in dispatch order (for profiling). */
  readonly ops: readonly KernelOp[];
  /** Records forward, losses and backward (dispatches 1–16): losses and raw gradients. */
  encodeForwardBackward(encoder: GPUCommandEncoder): void;
  /** Records a whole step (1–20): forward, loss, backward, clip, Adam, counter advance. */
  encodeStep(encoder: GPUCommandEncoder): void;
  /** Destroys the buffers the step allocated (not those passed in `buffers`). */
  destroy(): void;
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
  const T = Math.max(1, ...entries.map((e) => e.plan.terms.length));
  if (T > MAX_TERMS) {
    throw new RangeError(`models: at most ${MAX_TERMS} loss terms per model, got ${T}`);
  }
  const shape: StepShape = { models: M, batch: B, dIn: D, dSae: S, terms: T };
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
    x: state("x", M * B * D),
    losses: state("losses", M * LOSS_WORDS),
    status: state("status", M),
    counter: state("counter", 1),
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
    ...(anyApply ? { xIn: own("xIn", M * B * D) } : {}),
    acts: own("acts", M * B * S),
    norms: own("norms", M * S),
    stack: own("stack", M * T * B * S),
    rg: own("rg", M * T * B * D),
    gradActs: own("gradActs", M * B * S),
  };
  const gv = own("gv", M * B * S);
  const gradStack = own("gradStack", M * T * B * S);
  const gradPre = own("gradPre", M * B * S);
  const dims = createStepDims(gpu, shape);
  const { params, grads } = buffers;
  const xIn = inter.xIn ?? buffers.x;
  const variant = options.matmulVariant ? { variant: options.matmulVariant } : {};
  const param = (offset: number) => ({ buffer: params, offset, stride: P });
  const grad = (offset: number) => ({ buffer: grads, offset, stride: P });
  const common = { shape, dims, models };

  const forwardBackward: KernelOp[] = [];
  const add = (op: KernelOp) => forwardBackward.push(op);
  // encode
  add(await createRowNorms(gpu, { shape, dims, params, norms: inter.norms }));
  if (inter.xIn) {
    const scales = upload(
      "apply scales",
      new Float32Array(entries.map((e) => e.applyBDecToInput ? -1 : 0)),
    );
    add(
      await createAddBias(gpu, {
        batch: M,
        rows: B,
        cols: D,
        src: buffers.x,
        bias: param(layout.bDec),
        scales,
        dst: inter.xIn,
        label: "x − b_dec",
      }),
    );
  }
  add(
    await createMatmul(gpu, {
      batch: M,
      rows: B,
      cols: S,
      inner: D,
      a: { buffer: xIn, stride: B * D },
      b: param(layout.wEnc),
      bias: { offset: layout.bEnc, stride: P },
      c: { buffer: inter.acts, stride: B * S },
      ...variant,
      label: "ReLU(xin·W_enc + b_enc)",
    }),
  );
  // per-term decode
  add(
    await createMaskActs(gpu, { ...common, acts: inter.acts, stack: inter.stack, backward: false }),
  );
  add(
    await createMatmul(gpu, {
      batch: M,
      rows: T * B,
      cols: D,
      inner: S,
      a: { buffer: inter.stack, stride: T * B * S },
      b: param(layout.wDec),
      c: { buffer: inter.rg, stride: T * B * D },
      ...variant,
      label: "stack·W_dec",
    }),
  );
  // loss
  add(
    await createSparsityForward(gpu, {
      ...common,
      acts: inter.acts,
      norms: inter.norms,
      gv,
      gradActs: inter.gradActs,
      losses: buffers.losses,
    }),
  );
  add(
    await createReconLoss(gpu, {
      ...common,
      x: buffers.x,
      params,
      rg: inter.rg,
      losses: buffers.losses,
    }),
  );
  // backward
  add(
    await createMaskActs(gpu, { ...common, acts: inter.acts, stack: inter.stack, backward: true }),
  );
  add(
    await createMatmul(gpu, {
      batch: M,
      rows: S,
      cols: D,
      inner: T * B,
      transA: true,
      a: { buffer: inter.stack, stride: T * B * S },
      b: { buffer: inter.rg, stride: T * B * D },
      c: grad(layout.wDec),
      ...variant,
      label: "stackᵀ·g_r",
    }),
  );
  if (anyByNorm) {
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
  }
  add(
    await createMatmul(gpu, {
      batch: M,
      rows: T * B,
      cols: S,
      inner: D,
      transB: true,
      a: { buffer: inter.rg, stride: T * B * D },
      b: param(layout.wDec),
      c: { buffer: gradStack, stride: T * B * S },
      ...variant,
      label: "g_r·W_decᵀ",
    }),
  );
  add(await createMaskSum(gpu, { ...common, gradStack, gradActs: inter.gradActs }));
  add(
    await createReluBackward(gpu, {
      count: M * B * S,
      gradActs: inter.gradActs,
      acts: inter.acts,
      gradPre,
    }),
  );
  add(
    await createMatmul(gpu, {
      batch: M,
      rows: D,
      cols: S,
      inner: B,
      transA: true,
      a: { buffer: xIn, stride: B * D },
      b: { buffer: gradPre, stride: B * S },
      c: grad(layout.wEnc),
      ...variant,
      label: "xinᵀ·g_pre",
    }),
  );
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
  add(await createBDecGrad(gpu, { ...common, params, rg: inter.rg, grads }));

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
  const step = [...forwardBackward, ...update];

  return {
    layout,
    shape,
    buffers,
    intermediates: inter,
    dispatches: { forwardBackward: forwardBackward.length, step: step.length },
    ops: step,
    encodeForwardBackward: (encoder) => encodeOps(encoder, forwardBackward, "forward-backward"),
    encodeStep: (encoder) => encodeOps(encoder, step, "training step"),
    destroy: () => {
      for (const op of step) op.destroy();
      for (const buffer of owned) buffer.destroy();
      dims.destroy();
    },
  };
}
