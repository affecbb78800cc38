/**
 * Wrapper of `shaders/matmul.wgsl` and `shaders/matmul_blocked.wgsl`: batched
 * `C[m] (+)= op(A[m]) · op(B[m])` over M problems, optionally `max(… + bias[m], 0)` (the encoder's
 * epilogue), with transposes and register-block sizes as compile-time (`override`) constants in the
 * pipeline key and sizes, offsets and per-problem strides in a uniform.
 *
 * Three formulations exist:
 * - `blocked` (matmul_blocked.wgsl): every size, offset and stride a multiple of 4; one invocation
 *   per (4·RB)×(4·CB) block of C held as 4×4 matrices in registers, vec4 loads, 64·RB·CB
 *   multiply-adds per loop iteration. The default wherever the sizes allow it.
 * - `block` (matmul.wgsl): any sizes; one invocation per 4×4 block, scalar loads, 16 multiply-adds
 *   per iteration. The default otherwise.
 * - `tiled` (matmul.wgsl): 16×16 workgroup tiles staged in workgroup memory (barriers), one output
 *   per invocation; slower on every CPU adapter measured, kept for comparison.
 *
 * Measured on llvmpipe (2 shared CPU cores), M = 16, the larger toy's five products of a step
 * (B 128, dIn 256, dSae 64, T·B 256), ms per dispatch for xin·W_enc, stack·W_dec, g_r·W_decᵀ,
 * stackᵀ·g_r, xinᵀ·g_pre: `block` 20.0, 42.2, 33.4, 34.3, 17.0; `blocked` RB = CB = 2: 7.3, 13.9,
 * 12.3, 12.3, 7.3 (2.7× fewer ms); RB = CB = 1: 14.3, 25.8, 23.4, 27.2, 13.3; RB 1, CB 2: 9.8, 19.5,
 * 17.8, 19.4, 9.8; RB 2, CB 4 (arrays of 8): 12.6, 29.2, 29.3, 18.0, 10.5; the same 2×2 kernel with
 * scalar loads assembled into vectors 13.2, 26.4, 24.2, 26.1, 13.5; two k-blocks per iteration no
 * faster. Hence {@link blockedTiles}: 2×2 register blocks wherever the output has 8 rows and 8
 * columns, 1 along a side of 4.
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline, type ShaderFile } from "../gpu/pipelines.ts";
import { defineRecord, packRecords, recordWgsl } from "../gpu/records.ts";
import matmulWgsl from "../../shaders/matmul.wgsl" with { type: "text" };
import matmulBlockedWgsl from "../../shaders/matmul_blocked.wgsl" with { type: "text" };
import { type KernelOp, kernelOp, requirePositive, requireWords, WORKGROUP } from "./kernel_op.ts";

/** Which matmul formulation to compile. */
export type MatmulVariant = "blocked" | "block" | "tiled";

/** Register blocks per invocation of the `blocked` formulation along rows and columns. */
export interface BlockedTiles {
  /** 4-row register blocks per invocation (1 or 2). */
  rows: 1 | 2;
  /** 4-column register blocks per invocation (1 or 2). */
  cols: 1 | 2;
}

/**
 * The register blocking of the `blocked` formulation for a C of `rows` × `cols` (the measured
 * choice in this module's header): 2 blocks of 4 along a side of at least 8, else 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blockedTiles } from "./matmul.ts";
 * assert.deepEqual(blockedTiles(128, 64), { rows: 2, cols: 2 });
 * assert.deepEqual(blockedTiles(4, 256), { rows: 1, cols: 2 });
 * ```
 */
export function blockedTiles(rows: number, cols: number): BlockedTiles {
  return { rows: rows >= 8 ? 2 : 1, cols: cols >= 8 ? 2 : 1 };
}

/**
 * Loop iterations one invocation of `blocked` runs (as Mesa counts them, nested loops included):
 * the edge clamps, `inner / 4` k-blocks of loads and products, the stores (and the MSE epilogue's
 * row sums). `tests/kernels_matmul_test.ts` checks it against the kernel's own count
 * (`countLoops`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blockedLoopIterations } from "./matmul.ts";
 * assert.equal(blockedLoopIterations(256, { rows: 2, cols: 2 }, true), 34 + 9 * 64);
 * ```
 */
export function blockedLoopIterations(
  inner: number,
  tiles: BlockedTiles,
  residual = false,
): number {
  const { rows: rb, cols: cb } = tiles;
  const perBlock = 1 + rb + cb * (1 + rb);
  return rb + cb + Math.ceil(inner / 4) * perBlock + rb + 5 * rb * cb + (residual ? 4 * rb : 0);
}

/** Block columns per row of a `blocked` product's C (the partial sums of its MSE epilogue). */
export function residualBlocks(rows: number, cols: number): number {
  return Math.ceil(cols / (4 * blockedTiles(rows, cols).cols));
}

/** Whether a product qualifies for `blocked`: sizes, offsets and strides multiples of 4. */
export function blockedFits(spec: MatmulSpec): boolean {
  const operands = [
    spec.a,
    spec.b,
    spec.c,
    ...(spec.bias ? [spec.bias] : []),
    ...(spec.shift ? [spec.shift] : []),
    ...(spec.residual ? [spec.residual.target] : []),
    ...(spec.gate ? [spec.gate] : []),
  ];
  return [spec.rows, spec.cols, spec.inner].every((v) => v % 4 === 0) &&
    operands.every((o) => (o.offset ?? 0) % 4 === 0 && o.stride % 4 === 0) &&
    [spec.a, spec.b, spec.c, ...(spec.residual ? [spec.residual.target] : [])]
      .concat(spec.gate ? [spec.gate] : [])
      .every((o) => (o.ld ?? 0) % 4 === 0);
}

/** One operand: matrix m starts at `offset + m * stride` floats of `buffer`. */
export interface MatrixOperand {
  /** The storage buffer holding the matrices. */
  buffer: GPUBuffer;
  /** Floats before matrix 0 (default 0). */
  offset?: number;
  /** Floats between consecutive matrices; 0 broadcasts matrix 0 to every m. */
  stride: number;
  /**
   * Stored row pitch in floats (default the stored width: inner or rows for A, cols or inner for B,
   * cols for C); wider selects a block of columns of a larger matrix.
   */
  ld?: number;
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
  /**
   * The encoder's epilogue `C = max(op(A)·op(B) + bias[m], 0)`: `bias[m]` is `cols` floats of B's
   * buffer at `offset + m * stride` (not with `accumulate` or `tiled`).
   */
  bias?: { offset?: number; stride: number };
  /**
   * Read `A[m] − scales[m] · shift[m]` instead of A[m]: `shift[m]` (the stored width of A: inner,
   * or rows with `transA`) at `offset + m * stride` floats of `buffer`, `scales` `[M]` floats (the
   * encoder input x − b_dec of the models that apply b_dec; not with `tiled`).
   */
  shift?: { buffer: GPUBuffer; offset?: number; stride: number; scales: GPUBuffer };
  /**
   * `blocked` only, with `bias`: the MSE epilogue. e = op(A)·op(B) + bias[m] − target[m]
   * (target `[rows][cols]`, pitch `ld`); C = `scales[m]` · e; and Σ e² over each invocation's
   * `4 · tiles.cols` columns of each row into `rowSq` at `offset + m · stride + r · blocks + k`
   * for block column k of {@link residualBlocks} (a decoded term's gradient and loss in one pass).
   */
  residual?: {
    target: MatrixOperand;
    scales: GPUBuffer;
    rowSq: { buffer: GPUBuffer; offset?: number; stride: number };
  };
  /**
   * `blocked` only: C (+)= op(A)·op(B) · [gate > 0], gate laid out like C (`[rows][cols]`, pitch
   * `ld`): the ReLU's backward mask where ∂loss/∂acts is formed (not with `residual`).
   */
  gate?: MatrixOperand;
  /**
   * Debug (`blocked` only): each invocation stores its loop-iteration count over the first vector
   * of its block of C instead of the product (see {@link blockedLoopIterations}).
   */
  countLoops?: boolean;
  /** Formulation (default `blocked` where {@link blockedFits}, else `block`). */
  variant?: MatmulVariant;
  /** Register blocking of `blocked` (default {@link blockedTiles}). */
  tiles?: BlockedTiles;
  /** Label of the pipeline and its buffers. */
  label?: string;
}

/**
 * The `MatmulDims` uniform both matmul shaders read: sizes, each operand's offset, per-problem
 * stride and row pitch (floats), and the epilogues' operands. One table: TypeScript packs it by
 * name and the WGSL struct is generated from it ({@link MATMUL_DIMS_FILE}).
 */
export const MATMUL_DIMS = defineRecord("MatmulDims", [
  { name: "batch", type: "u32", doc: "problems M" },
  { name: "rows", type: "u32" },
  { name: "cols", type: "u32" },
  { name: "inner", type: "u32" },
  { name: "aOffset", type: "u32" },
  { name: "aStride", type: "u32" },
  { name: "bOffset", type: "u32" },
  { name: "bStride", type: "u32" },
  { name: "cOffset", type: "u32" },
  { name: "cStride", type: "u32" },
  { name: "biasOffset", type: "u32", doc: "the bias rows, in B's buffer" },
  { name: "biasStride", type: "u32" },
  { name: "aLd", type: "u32", doc: "stored row pitches" },
  { name: "bLd", type: "u32" },
  { name: "cLd", type: "u32" },
  { name: "shiftOffset", type: "u32", doc: "A_SHIFT's vectors" },
  { name: "shiftStride", type: "u32" },
  { name: "residOffset", type: "u32", doc: "RESIDUAL's target or GATE's mask (matmul_blocked)" },
  { name: "residStride", type: "u32" },
  { name: "residLd", type: "u32" },
  { name: "sqOffset", type: "u32", doc: "RESIDUAL's row sums" },
  { name: "sqStride", type: "u32" },
], { uniform: true });

/** The generated `struct MatmulDims`, included before either matmul shader. */
export const MATMUL_DIMS_FILE: ShaderFile = {
  path: "src/kernels/matmul.ts (generated)",
  code: "// Generated by src/kernels/matmul.ts from MATMUL_DIMS; edit it, not this text.\n" +
    recordWgsl(MATMUL_DIMS),
};
const FILE = { path: "shaders/matmul.wgsl", code: matmulWgsl };
const BLOCKED_FILE = { path: "shaders/matmul_blocked.wgsl", code: matmulBlockedWgsl };
const TILE = 16;

/** Floats one stored matrix spans: `lines` rows of pitch `ld` of which `width` are read. */
function span(lines: number, width: number, ld: number): number {
  return (lines - 1) * ld + width;
}

/** The pitch of an operand, checked against the width it is read at. */
function pitchOf(name: string, operand: MatrixOperand, width: number): number {
  const ld = operand.ld ?? width;
  if (!Number.isInteger(ld) || ld < width) {
    throw new RangeError(`Operand ${name}: ld must be an integer ≥ ${width}, got ${ld}`);
  }
  return ld;
}

function checkOperand(
  name: string,
  operand: { buffer: GPUBuffer; offset?: number; stride: number },
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
  const transA = spec.transA ?? false;
  const transB = spec.transB ?? false;
  // Stored shapes: A [rows][inner] or [inner][rows]; B [inner][cols] or [cols][inner]; C [rows][cols].
  const [aLines, aWidth] = transA ? [inner, rows] : [rows, inner];
  const [bLines, bWidth] = transB ? [cols, inner] : [inner, cols];
  const aLd = pitchOf("a", spec.a, aWidth);
  const bLd = pitchOf("b", spec.b, bWidth);
  const cLd = pitchOf("c", spec.c, cols);
  checkOperand("a", spec.a, batch, span(aLines, aWidth, aLd));
  checkOperand("b", spec.b, batch, span(bLines, bWidth, bLd));
  checkOperand("c", spec.c, batch, span(rows, cols, cLd));
  if (spec.bias) checkOperand("bias", { ...spec.bias, buffer: spec.b.buffer }, batch, cols);
  if (spec.shift) {
    checkOperand("shift", spec.shift, batch, aWidth);
    requireWords("shift scales", spec.shift.scales, batch);
  }
  const variant = spec.variant ?? (blockedFits(spec) ? "blocked" : "block");
  const accumulate = spec.accumulate ?? false;
  if (variant === "blocked" && !blockedFits(spec)) {
    throw new RangeError(
      `matmul "blocked": rows, cols, inner and every offset and stride must be multiples of 4 ` +
        `(got ${rows}×${inner}·${inner}×${cols}); use variant "block"`,
    );
  }
  if (spec.bias && (accumulate || variant === "tiled")) {
    throw new RangeError(`matmul: bias is not available with accumulate or variant "tiled"`);
  }
  if (spec.shift && variant === "tiled") {
    throw new RangeError(`matmul: shift is not available with variant "tiled"`);
  }
  const residual = spec.residual;
  if (residual && (variant !== "blocked" || !spec.bias || accumulate || spec.tiles)) {
    throw new RangeError(
      `matmul: residual needs variant "blocked", a bias, no accumulate and the default tiles`,
    );
  }
  const gate = spec.gate;
  if (gate && (variant !== "blocked" || residual)) {
    throw new RangeError(`matmul: gate needs variant "blocked" and no residual`);
  }
  const biasRelu = spec.bias !== undefined && !residual;
  const blocks = residualBlocks(rows, cols);
  const rOperand = residual?.target ?? gate;
  const residLd = rOperand ? pitchOf(residual ? "residual target" : "gate", rOperand, cols) : 0;
  if (gate) checkOperand("gate", gate, batch, span(rows, cols, residLd));
  if (residual) {
    checkOperand("residual target", residual.target, batch, span(rows, cols, residLd));
    requireWords("residual scales", residual.scales, batch);
    checkOperand("residual rowSq", residual.rowSq, batch, rows * blocks);
  }
  const tiles = spec.tiles ?? blockedTiles(rows, cols);
  const flags = `${transA ? "T" : "N"}${transB ? "T" : "N"}${accumulate ? "+" : ""}` +
    (biasRelu ? " +bias,relu" : "") + (spec.shift ? " A−shift" : "") +
    (residual ? " MSE" : "") + (gate ? " gated" : "");
  const label = spec.label ?? `matmul ${flags}`;
  const pipeline = await getPipeline(gpu, {
    label: `matmul_${variant} ${flags}`,
    files: [MATMUL_DIMS_FILE, variant === "blocked" ? BLOCKED_FILE : FILE],
    entryPoint: `matmul_${variant}`,
    constants: {
      TRANS_A: transA ? 1 : 0,
      TRANS_B: transB ? 1 : 0,
      ACCUMULATE: accumulate ? 1 : 0,
      ...(variant === "tiled"
        ? {}
        : { WG: WORKGROUP, BIAS_RELU: biasRelu ? 1 : 0, A_SHIFT: spec.shift ? 1 : 0 }),
      ...(variant === "blocked"
        ? {
          RB: tiles.rows,
          CB: tiles.cols,
          RESIDUAL: residual ? 1 : 0,
          GATE: gate ? 1 : 0,
          ...(spec.countLoops ? { COUNT_LOOPS: 1 } : {}),
        }
        : {}),
    },
  });
  const uniform = uploadUniform(
    gpu,
    `${label} dims`,
    packRecords(MATMUL_DIMS, [{
      batch,
      rows,
      cols,
      inner,
      aOffset: spec.a.offset ?? 0,
      aStride: spec.a.stride,
      bOffset: spec.b.offset ?? 0,
      bStride: spec.b.stride,
      cOffset: spec.c.offset ?? 0,
      cStride: spec.c.stride,
      biasOffset: spec.bias?.offset ?? 0,
      biasStride: spec.bias?.stride ?? 0,
      aLd,
      bLd,
      cLd,
      shiftOffset: spec.shift?.offset ?? 0,
      shiftStride: spec.shift?.stride ?? 0,
      residOffset: rOperand?.offset ?? 0,
      residStride: rOperand?.stride ?? 0,
      residLd,
      sqOffset: residual?.rowSq.offset ?? 0,
      sqStride: residual?.rowSq.stride ?? 0,
    }]),
  );
  // Bindings the shader names but this product does not read stand in: A for the read-only ones,
  // a buffer of the op's own for row_sq (written only with RESIDUAL).
  const owned = [uniform];
  let rowSq = residual?.rowSq.buffer;
  if (variant === "blocked" && !rowSq) {
    rowSq = createStorage(gpu, `${label} (no row sums)`, 16);
    owned.push(rowSq);
  }
  const group = bindGroup(gpu, pipeline, {
    0: uniform,
    1: spec.a.buffer,
    2: spec.b.buffer,
    3: spec.c.buffer,
    4: spec.shift?.buffer ?? spec.a.buffer,
    5: spec.shift?.scales ?? spec.a.buffer,
    ...(variant === "blocked"
      ? {
        6: rOperand?.buffer ?? spec.a.buffer,
        7: residual?.scales ?? spec.a.buffer,
        8: rowSq!,
      }
      : {}),
  }, label);
  const workgroups = variant === "blocked"
    ? Math.ceil(
      batch * Math.ceil(rows / (4 * tiles.rows)) * Math.ceil(cols / (4 * tiles.cols)) / WORKGROUP,
    )
    : variant === "block"
    ? Math.ceil(batch * Math.ceil(rows / 4) * Math.ceil(cols / 4) / WORKGROUP)
    : batch * Math.ceil(rows / TILE) * Math.ceil(cols / TILE);
  return kernelOp(gpu, label, pipeline, group, workgroups, owned);
}
