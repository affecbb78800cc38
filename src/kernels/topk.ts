/**
 * Wrapper of `shaders/topk.wgsl`: TopK / BatchTopK selection of M models' activations in place,
 * and the state update after a step (the BatchTopK threshold, the dead-latent counters).
 */
import type { Gpu } from "../gpu/device.ts";
import { uploadStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline } from "../gpu/pipelines.ts";
import type { Architecture } from "../sae/config.ts";
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
const MODE: Readonly<Record<Architecture, number>> = { standard: 0, topk: 1, batchtopk: 2 };

/** One model's selection. */
export interface TopKModelSpec {
  /** `standard` models are left alone. */
  architecture: Architecture;
  /** Kept per row (TopK) or `k · batch` over the batch (BatchTopK). */
  k: number;
  /** BatchTopK's threshold rate (θ ← (1 − lr)·θ + lr·min kept). */
  thresholdLr: number;
}

/** Words of one model's state: θ (f32 bits), then the steps since each latent fired. */
export function topkStateWords(dSae: number): number {
  return 1 + dSae;
}

/**
 * The most loop iterations one invocation of either entry point runs (Mesa's CPU adapters stop
 * an invocation past {@link LOOP_LIMIT}).
 */
export function topkLoopIterations(batch: number, dSae: number, anyTopK: boolean): number {
  const n = batch * dSae;
  const perThread = Math.ceil(n / WORKGROUP);
  const select = Math.max(
    anyTopK ? Math.ceil(batch / WORKGROUP) * dSae * dSae : 0,
    32 * perThread + WORKGROUP + perThread,
  );
  return Math.max(select, perThread + Math.ceil(dSae / WORKGROUP) * batch);
}

/** The two ops of a TopK-family step. */
export interface TopKOps {
  /** Selects in place: `acts [M][B][S]` keeps what each model's architecture keeps. */
  select: KernelOp;
  /** After the step: the threshold and dead-latent counters in `state` (models with status 0). */
  update: KernelOp;
}

/**
 * Builds the selection and state-update ops of M models.
 *
 * @throws {RangeError} on sizes that do not match, a k outside [1, dSae], or shapes past Mesa's
 *   loop limit.
 */
export async function createTopK(
  gpu: Gpu,
  spec: {
    models: readonly TopKModelSpec[];
    batch: number;
    dSae: number;
    /** `[M][B][S]` f32 activations. */
    acts: GPUBuffer;
    /** `[M][1 + S]` u32 (see {@link topkStateWords}). */
    state: GPUBuffer;
    /** `[M]` u32, 0 while a model trains. */
    status: GPUBuffer;
    label?: string;
  },
): Promise<TopKOps> {
  const M = spec.models.length;
  const { batch: B, dSae: S } = spec;
  requirePositive("models.length", M);
  requirePositive("batch", B);
  requirePositive("dSae", S);
  requireWords("acts", spec.acts, M * B * S);
  requireWords("state", spec.state, M * topkStateWords(S));
  requireWords("status", spec.status, M);
  spec.models.forEach((model, m) => {
    if (model.architecture !== "standard" && !(Number.isInteger(model.k) && model.k >= 1)) {
      throw new RangeError(`models[${m}].k must be an integer in [1, dSae = ${S}], got ${model.k}`);
    }
  });
  const loops = topkLoopIterations(B, S, spec.models.some((m) => m.architecture === "topk"));
  if (loops > LOOP_LIMIT) {
    throw new RangeError(
      `topk: ${loops} loop iterations per invocation for batch ${B} and dSae ${S}; Mesa's CPU ` +
        `adapters stop an invocation after ${LOOP_LIMIT}: use a smaller batch or dSae`,
    );
  }
  const label = spec.label ?? "topk";
  const table = new Uint32Array(M * 4);
  const floats = new Float32Array(table.buffer);
  spec.models.forEach((model, m) => {
    table[m * 4] = MODE[model.architecture];
    table[m * 4 + 1] = Math.min(model.k, S);
    floats[m * 4 + 2] = model.thresholdLr;
  });
  const specs = uploadStorage(gpu, `${label} specs`, table);
  const dims = uploadUniform(gpu, `${label} dims`, new Uint32Array([M, B, S, 0]));
  const owned = [specs, dims];
  const op = async (entryPoint: "topk_select" | "topk_state", owns: GPUBuffer[]) => {
    const pipeline = await getPipeline(gpu, {
      label: entryPoint,
      files: [FILE],
      entryPoint,
      constants: { WG: WORKGROUP },
    });
    const group = bindGroup(
      gpu,
      pipeline,
      entryPoint === "topk_select"
        ? { 0: dims, 1: specs, 2: spec.acts }
        : { 0: dims, 1: specs, 2: spec.acts, 3: spec.state, 4: spec.status },
      `${label} ${entryPoint}`,
    );
    return kernelOp(gpu, `${label} ${entryPoint}`, pipeline, group, M, owns);
  };
  return { select: await op("topk_select", owned), update: await op("topk_state", []) };
}
