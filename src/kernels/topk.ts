/**
 * Wrapper of `shaders/topk.wgsl`: TopK / BatchTopK selection of M models' activations in place,
 * the dead-latent auxiliary loss (forward and gradient), and the state update after a step (the
 * BatchTopK threshold, the dead-latent counters).
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, uploadStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline } from "../gpu/pipelines.ts";
import type { ParamLayout } from "../sae/layout.ts";
import { LOSS_RECORD, type ModelEntry } from "../sae/model_table.ts";
import { batchKept } from "../reference/topk_reference.ts";
import topkWgsl from "../../shaders/topk.wgsl" with { type: "text" };
import {
  type KernelOp,
  kernelOp,
  LOOP_LIMIT,
  requirePositive,
  requireWords,
  WORKGROUP,
} from "./kernel_op.ts";

const FILE = { path: "shaders/topk.wgsl", code: topkWgsl };

/** The shader's mode of each architecture (0: left alone). */
const MODE = { topk: 1, batchtopk: 2 } as const;

/** Words of one model's state: θ (f32 bits), then the steps since each latent fired. */
export function topkStateWords(dSae: number): number {
  return 1 + dSae;
}

/** Floats of one row of the auxiliary loss's scratch: dr [dIn], aux acts [dSae], pre [dSae], loss. */
export function auxRowWords(dIn: number, dSae: number): number {
  return dIn + 2 * dSae + 1;
}

/** What the ops read of each model (a {@link ModelEntry} has both fields). */
export type TopKModel = Pick<ModelEntry, "topk" | "applyBDecToInput">;

/**
 * The most loop iterations one invocation of an entry point runs (Mesa's CPU adapters stop an
 * invocation past {@link LOOP_LIMIT}).
 */
export function topkLoopIterations(
  batch: number,
  dSae: number,
  dIn: number,
  models: readonly TopKModel[],
): number {
  const n = batch * dSae;
  const perThread = Math.ceil(n / WORKGROUP);
  const anyTopK = models.some((m) => m.topk?.architecture === "topk");
  const anyAux = models.some((m) => (m.topk?.auxCoefficient ?? 0) > 0);
  return Math.max(
    anyTopK ? Math.ceil(batch / WORKGROUP) * dSae * dSae : 0,
    32 * perThread + WORKGROUP + perThread,
    perThread + Math.ceil(dSae / WORKGROUP) * batch,
    anyAux ? dSae + 4 * dSae * dIn + dSae * dSae + auxRowWords(dIn, dSae) : 0,
    anyAux ? batch : 0,
  );
}

/** The ops of a TopK-family step, in the order a step runs them. */
export interface TopKOps {
  /** After the encoder: `acts [M][B][S]` keeps what each model's architecture keeps. */
  select: KernelOp;
  /**
   * After g_pre is formed (auxiliary loss only): each row's auxiliary loss and its gradient,
   * added to `gradPre`.
   */
  auxForward?: KernelOp;
  /** After the last gradient write (auxiliary loss only): W_dec and b_dec gradients, the loss. */
  auxGrad?: KernelOp;
  /** After the optimiser: the threshold and dead-latent counters in `state` (status 0 only). */
  update: KernelOp;
}

/** The buffers and layout the auxiliary loss reads and writes. */
export interface TopKAuxBuffers {
  /** Input width. */
  dIn: number;
  /** Where the tensors sit in each model's `layout.size` floats. */
  layout: ParamLayout;
  /** `[M][P]` parameters. */
  params: GPUBuffer;
  /** `[M][B][dIn]` inputs. */
  x: GPUBuffer;
  /** `[M][B][S]` ∂loss/∂pre (the auxiliary loss adds to it). */
  gradPre: GPUBuffer;
  /** `[M][P]` gradients (the auxiliary loss adds to W_dec's and b_dec's). */
  grads: GPUBuffer;
  /** `[M][LOSS_WORDS]` loss records (`aux` written, added to `total`). */
  losses: GPUBuffer;
}

/**
 * Builds the TopK-family ops of M models (models without `topk` are left alone); the auxiliary
 * loss's ops when `aux` is given and a model has a coefficient above 0.
 *
 * @throws {RangeError} on sizes that do not match, a k below 1, or shapes past Mesa's loop limit.
 */
export async function createTopK(
  gpu: Gpu,
  spec: {
    models: readonly TopKModel[];
    batch: number;
    dSae: number;
    /** `[M][B][S]` f32 activations. */
    acts: GPUBuffer;
    /** `[M][1 + S]` u32 (see {@link topkStateWords}). */
    state: GPUBuffer;
    /** `[M]` u32, 0 while a model trains. */
    status: GPUBuffer;
    aux?: TopKAuxBuffers;
    label?: string;
  },
): Promise<TopKOps> {
  const M = spec.models.length;
  const { batch: B, dSae: S } = spec;
  const D = spec.aux?.dIn ?? 1;
  requirePositive("models.length", M);
  requirePositive("batch", B);
  requirePositive("dSae", S);
  requireWords("acts", spec.acts, M * B * S);
  requireWords("state", spec.state, M * topkStateWords(S));
  requireWords("status", spec.status, M);
  spec.models.forEach(({ topk }, m) => {
    if (topk?.architecture === "topk" && !(Number.isInteger(topk.k) && topk.k >= 1)) {
      throw new RangeError(`models[${m}].topk.k must be an integer >= 1, got ${topk.k}`);
    }
    if (topk?.architecture === "batchtopk" && !(batchKept(topk.k, B) >= 1)) {
      throw new RangeError(
        `models[${m}].topk.k: BatchTopK keeps ⌊k · batch⌋ activations, at least 1; got k ` +
          `${topk.k} with batch ${B}`,
      );
    }
    if (topk && topk.auxCoefficient > 0 && !(Number.isInteger(topk.kAux) && topk.kAux >= 1)) {
      throw new RangeError(`models[${m}].topk.kAux must be an integer >= 1, got ${topk.kAux}`);
    }
  });
  const withAux = spec.aux !== undefined &&
    spec.models.some((m) => (m.topk?.auxCoefficient ?? 0) > 0);
  const loops = topkLoopIterations(B, S, withAux ? D : 0, withAux ? spec.models : []);
  if (loops > LOOP_LIMIT) {
    throw new RangeError(
      `topk: ${loops} loop iterations per invocation for batch ${B}, dSae ${S}` +
        (withAux ? `, dIn ${D} (auxiliary loss)` : "") + `; Mesa's CPU adapters stop an ` +
        `invocation after ${LOOP_LIMIT}: use a smaller batch, dSae or dIn` +
        (withAux ? " (or auxLossCoefficient 0)" : ""),
    );
  }
  const label = spec.label ?? "topk";
  const table = new Uint32Array(M * 8);
  const floats = new Float32Array(table.buffer);
  spec.models.forEach(({ topk, applyBDecToInput }, m) => {
    if (!topk) return; // mode 0
    table[m * 8] = MODE[topk.architecture];
    // TopK: k per row; BatchTopK: the count kept over the batch.
    table[m * 8 + 1] = topk.architecture === "topk"
      ? Math.min(topk.k, S)
      : Math.min(batchKept(topk.k, B), B * S);
    floats[m * 8 + 2] = topk.thresholdLr;
    floats[m * 8 + 3] = topk.auxCoefficient;
    table[m * 8 + 4] = topk.kAux;
    table[m * 8 + 5] = topk.deadWindow;
    table[m * 8 + 6] = applyBDecToInput ? 1 : 0;
  });
  const layout = spec.aux?.layout;
  const specs = uploadStorage(gpu, `${label} specs`, table);
  const dims = uploadUniform(
    gpu,
    `${label} dims`,
    new Uint32Array([
      M,
      B,
      S,
      D,
      layout?.size ?? 0,
      layout?.wEnc ?? 0,
      layout?.bEnc ?? 0,
      layout?.wDec ?? 0,
      layout?.bDec ?? 0,
      LOSS_RECORD.words,
      LOSS_RECORD.offset.total,
      LOSS_RECORD.offset.aux,
    ]),
  );
  const owned: GPUBuffer[] = [specs, dims];
  const op = async (
    entryPoint: "topk_select" | "topk_state" | "aux_forward" | "aux_grad",
    bindings: Record<number, GPUBuffer>,
    workgroups: number,
    owns: GPUBuffer[] = [],
  ) => {
    const pipeline = await getPipeline(gpu, {
      label: entryPoint,
      files: [FILE],
      entryPoint,
      constants: { WG: WORKGROUP },
    });
    const group = bindGroup(
      gpu,
      pipeline,
      { 0: dims, 1: specs, ...bindings },
      `${label} ${entryPoint}`,
    );
    return kernelOp(gpu, `${label} ${entryPoint}`, pipeline, group, workgroups, owns);
  };
  const ops: TopKOps = {
    select: await op("topk_select", { 2: spec.acts }, M, owned),
    update: await op("topk_state", { 2: spec.acts, 3: spec.state, 4: spec.status }, M),
  };
  if (withAux) {
    const a = spec.aux!;
    const P = a.layout.size;
    requireWords("params", a.params, M * P);
    requireWords("grads", a.grads, M * P);
    requireWords("x", a.x, M * B * D);
    requireWords("gradPre", a.gradPre, M * B * S);
    requireWords("losses", a.losses, M * LOSS_RECORD.words);
    const scratch = createStorage(gpu, `${label} aux scratch`, M * B * auxRowWords(D, S) * 4);
    ops.auxForward = await op(
      "aux_forward",
      { 2: spec.acts, 3: spec.state, 5: a.params, 6: a.x, 7: a.gradPre, 8: scratch },
      Math.ceil((M * B) / WORKGROUP),
      [scratch],
    );
    ops.auxGrad = await op(
      "aux_grad",
      { 3: spec.state, 8: scratch, 9: a.grads, 10: a.losses },
      Math.ceil((M * (S + 1) * D) / WORKGROUP),
    );
  }
  return ops;
}
