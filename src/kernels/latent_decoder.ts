/**
 * Wrapper of `shaders/latent_decoder.wgsl`: the decoder and its MSE terms in latent form (x = f·E,
 * so every residual is a combination of the basis rows W_dec, b_dec, −E): the basis geometry
 * ({@link latentBasis}), the per-row losses and ∂loss/∂pre ({@link createLatentRecon}), the
 * coefficients of the decoder's gradient ({@link createLatentCoeffs}) and the b_dec gradient
 * ({@link createLatentBDecGrad}). The products between them are built by src/sae/kernel_step.ts.
 */
import type { Gpu } from "../gpu/device.ts";
import { MODEL_INFO_WORDS } from "../sae/model_table.ts";
import latentDecoderWgsl from "../../shaders/latent_decoder.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import {
  BDEC_INPUT_GRAD_FILE,
  createStepOp,
  groupsFor,
  stepLayout,
  type StepShape,
} from "./step_dims.ts";
import { termRowsWords } from "./recon_loss.ts";

const FILE = { path: "shaders/latent_decoder.wgsl", code: latentDecoderWgsl };

/** Where the rows of one model's decoder basis sit: W_dec `[0, S)`, b_dec `S`, −E `[eOff, eOff + F)`. */
export interface LatentBasis {
  /** The first −E row (a multiple of 4 above S). */
  eOff: number;
  /** Rows K of the basis, its Gram matrix's side (a multiple of 4). */
  rows: number;
}

/**
 * The basis of `dSae` latents and `nFeatures` features, padded so every block starts and ends on
 * a multiple of 4 (the `blocked` products' requirement).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { latentBasis } from "./latent_decoder.ts";
 * assert.deepEqual(latentBasis(32, 30), { eOff: 36, rows: 68 });
 * ```
 */
export function latentBasis(dSae: number, nFeatures: number): LatentBasis {
  const up4 = (n: number) => Math.ceil(n / 4) * 4;
  const eOff = up4(dSae + 1);
  return { eOff, rows: eOff + up4(nFeatures) };
}

/** The buffers both passes read, besides the model table. */
interface LatentDecoderSpec {
  shape: StepShape;
  dims?: GPUBuffer;
  models: GPUBuffer;
  nFeatures: number;
  /** `[M][B][dSae]` activations. */
  acts: GPUBuffer;
  /** `[M][B][F]` the rows' feature values. */
  features: GPUBuffer;
}

function constants(spec: Pick<LatentDecoderSpec, "shape" | "nFeatures">): Record<string, number> {
  const { eOff, rows } = latentBasis(spec.shape.dSae, spec.nFeatures);
  return { N_FEATURES: spec.nFeatures, E_OFF: eOff, K_ROWS: rows };
}

/**
 * Each row's reconstruction loss per term into rows `[0, T)` of `termRows`, and ∂loss/∂pre in
 * place over `gradActs` (which holds ∂l1/∂acts on entry), from the basis Gram matrix `gram`
 * (`[M][K][K]`), `u = f·gram[E rows]` (`[M][B][K]`) and
 * `h_t = acts[:, :end_t]·gram[:end_t, :end_t]` (`[M][T][B][S]`).
 */
export function createLatentRecon(
  gpu: Gpu,
  spec: LatentDecoderSpec & {
    gram: GPUBuffer;
    u: GPUBuffer;
    h: GPUBuffer;
    gradActs: GPUBuffer;
    termRows: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dSae: S, terms: T } = spec.shape;
  const K = latentBasis(S, spec.nFeatures).rows;
  return createStepOp(gpu, {
    file: FILE,
    extraFiles: [BDEC_INPUT_GRAD_FILE],
    entryPoint: "latent_recon",
    constants: constants(spec),
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["gram", spec.gram, M * K * K],
      3: ["u", spec.u, M * B * K],
      4: ["h", spec.h, M * T * B * S],
      5: ["acts", spec.acts, M * B * S],
      6: ["features", spec.features, M * B * spec.nFeatures],
      7: ["gradActs", spec.gradActs, M * B * S],
      8: ["termRows", spec.termRows, termRowsWords(spec.shape)],
    },
    workgroups: groupsFor(M * B),
  });
}

/**
 * The coefficients `coeffs` (`[M][S + 1][K]`) of grads [W_dec; b_dec] = coeffs·basis from
 * `saa = actsᵀ·acts` (`[M][S][S]`), `saf = actsᵀ·f` (`[M][S][F]`) and the column sums of acts and f.
 */
export function createLatentCoeffs(
  gpu: Gpu,
  spec: LatentDecoderSpec & { saa: GPUBuffer; saf: GPUBuffer; coeffs: GPUBuffer },
): Promise<KernelOp> {
  const { models: M, batch: B, dSae: S } = spec.shape;
  const F = spec.nFeatures;
  const K = latentBasis(S, F).rows;
  return createStepOp(gpu, {
    file: FILE,
    extraFiles: [BDEC_INPUT_GRAD_FILE],
    entryPoint: "latent_coeffs",
    constants: constants(spec),
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      5: ["acts", spec.acts, M * B * S],
      6: ["features", spec.features, M * B * F],
      9: ["saa", spec.saa, M * S * S],
      10: ["saf", spec.saf, M * S * F],
      11: ["coeffs", spec.coeffs, M * (S + 1) * K],
    },
    workgroups: groupsFor(M * (S + 1) * K),
  });
}

/**
 * `grads b_dec = coeffs[S]·basis − [applyBDecToInput]·W_enc·(grads b_enc)`: needs the `b_enc`
 * gradient already in `grads`.
 */
export function createLatentBDecGrad(
  gpu: Gpu,
  spec: Omit<LatentDecoderSpec, "acts" | "features"> & {
    coeffs: GPUBuffer;
    basis: GPUBuffer;
    params: GPUBuffer;
    grads: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, dIn: D, dSae: S } = spec.shape;
  const K = latentBasis(S, spec.nFeatures).rows;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    extraFiles: [BDEC_INPUT_GRAD_FILE],
    entryPoint: "latent_bdec_grad",
    constants: constants(spec),
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      11: ["coeffs", spec.coeffs, M * (S + 1) * K],
      12: ["params", spec.params, M * P],
      13: ["basis", spec.basis, M * K * D],
      14: ["grads", spec.grads, M * P],
    },
    workgroups: groupsFor(M * D),
  });
}
