/**
 * Wrapper of `shaders/bias.wgsl`: a bias's gradient, the sum over rows, for M independent
 * `[rows][cols]` matrices (adding a bias is the products' epilogue, src/kernels/matmul.ts).
 */
import type { Gpu } from "../gpu/device.ts";
import { uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline } from "../gpu/pipelines.ts";
import biasWgsl from "../../shaders/bias.wgsl" with { type: "text" };
import { type KernelOp, kernelOp, requirePositive, requireWords, WORKGROUP } from "./kernel_op.ts";

const FILE = { path: "shaders/bias.wgsl", code: biasWgsl };

/** Per-model vectors: model m's starts at `offset + m * stride` floats of `buffer`. */
export interface VectorOperand {
  /** The storage buffer holding the vectors. */
  buffer: GPUBuffer;
  /** Floats before model 0's vector (default 0). */
  offset?: number;
  /** Floats between models' vectors; 0 shares one vector. */
  stride: number;
}

/** Shape of M contiguous `[rows][cols]` matrices. */
export interface RowsShape {
  /** Number of models M. */
  batch: number;
  /** Rows per matrix. */
  rows: number;
  /** Columns per matrix (the bias length). */
  cols: number;
}

function checkShape(shape: RowsShape): void {
  requirePositive("batch", shape.batch);
  requirePositive("rows", shape.rows);
  requirePositive("cols", shape.cols);
}

function dimsFor(gpu: Gpu, label: string, shape: RowsShape, vec: VectorOperand): GPUBuffer {
  requireWords(
    "vector",
    vec.buffer,
    (vec.offset ?? 0) + (shape.batch - 1) * vec.stride + shape.cols,
  );
  return uploadUniform(
    gpu,
    `${label} dims`,
    new Uint32Array([shape.batch, shape.rows, shape.cols, vec.offset ?? 0, vec.stride]),
  );
}

/** `sums[m][c] (+)= Σ_r src[m][r][c]` (the gradient of a bias broadcast over rows). */
export async function createReduceRows(
  gpu: Gpu,
  spec: RowsShape & {
    src: GPUBuffer;
    sums: VectorOperand;
    accumulate?: boolean;
    label?: string;
  },
): Promise<KernelOp> {
  checkShape(spec);
  requireWords("src", spec.src, spec.batch * spec.rows * spec.cols);
  const label = spec.label ?? "reduce_rows";
  const accumulate = spec.accumulate ?? false;
  const pipeline = await getPipeline(gpu, {
    label: `reduce_rows${accumulate ? "+" : ""}`,
    files: [FILE],
    entryPoint: "reduce_rows",
    constants: { WG: WORKGROUP, ACCUMULATE: accumulate ? 1 : 0 },
  });
  const dims = dimsFor(gpu, label, spec, spec.sums);
  const group = bindGroup(gpu, pipeline, {
    0: dims,
    1: spec.src,
    5: spec.sums.buffer,
  }, label);
  const workgroups = Math.ceil(spec.batch * spec.cols / WORKGROUP);
  return kernelOp(gpu, label, pipeline, group, workgroups, [dims]);
}
