/**
 * Wrapper of `shaders/matmul.wgsl`: batched `C[m] (+)= op(A[m]) · op(B[m])` over M problems, with
 * transposes as compile-time flags and sizes, offsets and per-problem strides in a uniform.
 *
 * Two formulations exist: `block` (barrier-free, one invocation per 4×4 block of outputs held in
 * registers) and `tiled` (16×16 workgroup tiles staged in workgroup memory, one output per
 * invocation). On the llvmpipe CPU adapter `block` is faster for every SAE shape measured (numbers
 * in the header of src/sae/kernel_step.ts), so it is the default.
 */
import type { Gpu } from "../gpu/device.ts";
import { uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline } from "../gpu/pipelines.ts";
import matmulWgsl from "../../shaders/matmul.wgsl" with { type: "text" };
import { type KernelOp, kernelOp, requirePositive, requireWords, WORKGROUP } from "./kernel_op.ts";

/** Which matmul formulation to compile. */
export type MatmulVariant = "block" | "tiled";

/** One operand: matrix m starts at `offset + m * stride` floats of `buffer`. */
export interface MatrixOperand {
  /** The storage buffer holding the matrices. */
  buffer: GPUBuffer;
  /** Floats before matrix 0 (default 0). */
  offset?: number;
  /** Floats between consecutive matrices; 0 broadcasts matrix 0 to every m. */
  stride: number;
}

/** A batched product `C[m] (+)= op(A[m]) · op(B[m])`. */
export interface MatmulSpec {
  /** Number of problems M. */
  batch: number;
  /** Rows of op(A) and C. */
  rows: number;
  /** Columns of op(B) and C. */
  cols: number;
  /** Columns of op(A) = rows of op(B). */
  inner: number;
  /** A, stored [rows][inner] (or [inner][rows] with `transA`). */
  a: MatrixOperand;
  /** B, stored [inner][cols] (or [cols][inner] with `transB`). */
  b: MatrixOperand;
  /** C, stored [rows][cols]. */
  c: MatrixOperand;
  /** A is stored transposed ([inner][rows]). */
  transA?: boolean;
  /** B is stored transposed ([cols][inner]). */
  transB?: boolean;
  /** Add into C instead of overwriting it. */
  accumulate?: boolean;
  /** Formulation (default `block`, the faster on llvmpipe). */
  variant?: MatmulVariant;
  /** Label of the pipeline and its buffers. */
  label?: string;
}

const FILE = { path: "shaders/matmul.wgsl", code: matmulWgsl };
const TILE = 16;

function checkOperand(
  name: string,
  operand: MatrixOperand,
  batch: number,
  words: number,
): void {
  const offset = operand.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(`Operand ${name}: offset must be a non-negative integer, got ${offset}`);
  }
  if (!Number.isInteger(operand.stride) || operand.stride < 0) {
    throw new RangeError(
      `Operand ${name}: stride must be a non-negative integer, got ${operand.stride}`,
    );
  }
  requireWords(name, operand.buffer, offset + (batch - 1) * operand.stride + words);
}

/** Builds the pipeline, uniform and bind group of one batched product, once. */
export async function createMatmul(gpu: Gpu, spec: MatmulSpec): Promise<KernelOp> {
  const { batch, rows, cols, inner } = spec;
  requirePositive("batch", batch);
  requirePositive("rows", rows);
  requirePositive("cols", cols);
  requirePositive("inner", inner);
  checkOperand("a", spec.a, batch, rows * inner);
  checkOperand("b", spec.b, batch, inner * cols);
  checkOperand("c", spec.c, batch, rows * cols);
  const variant = spec.variant ?? "block";
  const transA = spec.transA ?? false;
  const transB = spec.transB ?? false;
  const accumulate = spec.accumulate ?? false;
  const flags = `${transA ? "T" : "N"}${transB ? "T" : "N"}${accumulate ? "+" : ""}`;
  const label = spec.label ?? `matmul ${flags}`;
  const pipeline = await getPipeline(gpu, {
    label: `matmul_${variant} ${flags}`,
    files: [FILE],
    entryPoint: `matmul_${variant}`,
    constants: {
      TRANS_A: transA ? 1 : 0,
      TRANS_B: transB ? 1 : 0,
      ACCUMULATE: accumulate ? 1 : 0,
      ...(variant === "block" ? { WG: WORKGROUP } : {}),
    },
  });
  const uniform = uploadUniform(
    gpu,
    `${label} dims`,
    new Uint32Array([
      batch,
      rows,
      cols,
      inner,
      spec.a.offset ?? 0,
      spec.a.stride,
      spec.b.offset ?? 0,
      spec.b.stride,
      spec.c.offset ?? 0,
      spec.c.stride,
    ]),
  );
  const group = bindGroup(gpu, pipeline, {
    0: uniform,
    1: spec.a.buffer,
    2: spec.b.buffer,
    3: spec.c.buffer,
  }, label);
  const workgroups = variant === "block"
    ? Math.ceil(batch * Math.ceil(rows / 4) * Math.ceil(cols / 4) / WORKGROUP)
    : batch * Math.ceil(rows / TILE) * Math.ceil(cols / TILE);
  return kernelOp(gpu, label, pipeline, group, workgroups, [uniform]);
}
