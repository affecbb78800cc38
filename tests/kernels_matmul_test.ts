/**
 * shaders/matmul.wgsl and shaders/matmul_blocked.wgsl against a float64 CPU product, in the three
 * layouts of an SAE step (and both transposed), on shapes that are not multiples of the workgroup,
 * tile or register-block size; offsets, broadcasts, accumulation and the bias + ReLU epilogue.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats, upload } from "./_kernel_data.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { createStorage, readF32 } from "../src/gpu/buffers.ts";
import {
  blockedLoopIterations,
  type BlockedTiles,
  blockedTiles,
  createMatmul,
  type MatmulVariant,
  residualBlocks,
} from "../src/kernels/matmul.ts";
import { runOps } from "../src/kernels/kernel_op.ts";

interface Case {
  batch: number;
  rows: number;
  cols: number;
  inner: number;
  transA: boolean;
  transB: boolean;
}

/** C[m] = op(A[m])·op(B[m]) in float64, with the same storage conventions as the kernel. */
function cpuMatmul(
  c: Case,
  a: Float32Array,
  aOff: number,
  aStride: number,
  b: Float32Array,
  bOff: number,
  bStride: number,
): Float64Array {
  const out = new Float64Array(c.batch * c.rows * c.cols);
  for (let m = 0; m < c.batch; m++) {
    for (let r = 0; r < c.rows; r++) {
      for (let n = 0; n < c.cols; n++) {
        let acc = 0;
        for (let k = 0; k < c.inner; k++) {
          const av = a[aOff + m * aStride + (c.transA ? k * c.rows + r : r * c.inner + k)]!;
          const bv = b[bOff + m * bStride + (c.transB ? n * c.inner + k : k * c.cols + n)]!;
          acc += av * bv;
        }
        out[(m * c.rows + r) * c.cols + n] = acc;
      }
    }
  }
  return out;
}

// x·W_enc ([B][dIn]·[dIn][dSae]), g·W_decᵀ ([T·B][dIn]·([dSae][dIn])ᵀ), xᵀ·g ([B][dIn]ᵀ·[B][dSae]).
const CASES: Case[] = [
  { batch: 3, rows: 129, cols: 7, inner: 50, transA: false, transB: false },
  { batch: 1, rows: 129, cols: 1, inner: 50, transA: false, transB: false },
  { batch: 3, rows: 258, cols: 7, inner: 50, transA: false, transB: true },
  { batch: 3, rows: 50, cols: 7, inner: 129, transA: true, transB: false },
  { batch: 1, rows: 7, cols: 50, inner: 1, transA: true, transB: false },
  { batch: 3, rows: 17, cols: 19, inner: 23, transA: true, transB: true },
];

// Multiples of 4 but not of the 8×8 register block, in all four layouts; a single 4×4 block.
const ALIGNED_CASES: Case[] = [
  { batch: 3, rows: 132, cols: 12, inner: 52, transA: false, transB: false },
  { batch: 3, rows: 260, cols: 20, inner: 52, transA: false, transB: true },
  { batch: 2, rows: 52, cols: 12, inner: 132, transA: true, transB: false },
  { batch: 3, rows: 20, cols: 12, inner: 24, transA: true, transB: true },
  { batch: 1, rows: 4, cols: 4, inner: 4, transA: false, transB: false },
];

async function checkCases(
  gpu: Gpu,
  variant: MatmulVariant,
  cases = CASES,
  tiles?: BlockedTiles,
): Promise<void> {
  for (const [i, c] of cases.entries()) {
    const aData = randomFloats(10 + i, c.batch * c.rows * c.inner);
    const bData = randomFloats(20 + i, c.batch * c.inner * c.cols);
    const a = upload(gpu, "a", aData);
    const b = upload(gpu, "b", bData);
    const out = createStorage(gpu, "c", c.batch * c.rows * c.cols * 4);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      ...(tiles ? { tiles } : {}),
      a: { buffer: a, stride: c.rows * c.inner },
      b: { buffer: b, stride: c.inner * c.cols },
      c: { buffer: out, stride: c.rows * c.cols },
    });
    await runOps(gpu, [op]);
    const expected = cpuMatmul(c, aData, 0, c.rows * c.inner, bData, 0, c.inner * c.cols);
    const label = `${variant} ${JSON.stringify(tiles ?? {})} ${JSON.stringify(c)}`;
    assertClose(await readF32(gpu, out), expected, { atol: 1e-5, rtol: 1e-5, label });
  }
}

gpuTest("matmul_block computes xW, gWᵀ and xᵀg per model for ragged shapes", async (gpu) => {
  await checkCases(gpu, "block");
});

gpuTest("matmul_tiled computes xW, gWᵀ and xᵀg per model for ragged shapes", async (gpu) => {
  await checkCases(gpu, "tiled");
});

gpuTest("matmul_blocked computes every layout with each register blocking", async (gpu) => {
  for (const rows of [1, 2] as const) {
    for (const cols of [1, 2] as const) {
      await checkCases(gpu, "blocked", ALIGNED_CASES, { rows, cols });
    }
  }
  // The default picks blocked for these shapes and block for ragged ones (checked by refusal).
  assert.deepEqual(blockedTiles(132, 4), { rows: 2, cols: 1 });
  await assert.rejects(
    checkCases(gpu, "blocked", [CASES[0]!]),
    /matmul "blocked": rows, cols, inner and every offset and stride must be multiples of 4/,
  );
});

gpuTest("matmul offsets select sub-matrices and stride 0 broadcasts one matrix", async (gpu) => {
  for (const variant of ["block", "tiled", "blocked"] as const) {
    // A: three models' [12][8] blocks inside a parameter-like buffer at offset 4, stride 100.
    const c: Case = { batch: 3, rows: 12, cols: 8, inner: 8, transA: false, transB: false };
    const aData = randomFloats(1, 4 + 3 * 100);
    const bData = randomFloats(8, 8 + 64);
    const a = upload(gpu, "a", aData);
    const b = upload(gpu, "b", bData);
    const out = createStorage(gpu, "c", (8 + 3 * 100) * 4);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      a: { buffer: a, offset: 4, stride: 100 },
      b: { buffer: b, offset: 8, stride: 0 },
      c: { buffer: out, offset: 8, stride: 100 },
    });
    await runOps(gpu, [op]);
    const expected = cpuMatmul(c, aData, 4, 100, bData, 8, 0);
    const got = await readF32(gpu, out);
    for (let m = 0; m < 3; m++) {
      const block = got.subarray(8 + m * 100, 8 + m * 100 + 96);
      assertClose(block, expected.subarray(m * 96, (m + 1) * 96), {
        atol: 1e-6,
        rtol: 1e-5,
        label: `${variant} model ${m}`,
      });
      // Words between the blocks are untouched.
      assert.ok(got.subarray(8 + m * 100 + 96, 8 + (m + 1) * 100).every((v) => v === 0));
    }
  }
});

gpuTest("matmul with accumulate adds the product into C", async (gpu) => {
  for (const variant of ["block", "tiled", "blocked"] as const) {
    const c: Case = { batch: 3, rows: 52, cols: 12, inner: 36, transA: true, transB: false };
    const aData = randomFloats(3, 3 * 52 * 36);
    const bData = randomFloats(4, 3 * 36 * 12);
    const cData = randomFloats(5, 3 * 52 * 12);
    const out = upload(gpu, "c", cData);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      accumulate: true,
      a: { buffer: upload(gpu, "a", aData), stride: 52 * 36 },
      b: { buffer: upload(gpu, "b", bData), stride: 36 * 12 },
      c: { buffer: out, stride: 52 * 12 },
    });
    await runOps(gpu, [op]);
    const expected = cpuMatmul(c, aData, 0, 52 * 36, bData, 0, 36 * 12).map((v, i) =>
      v + cData[i]!
    );
    assertClose(await readF32(gpu, out), expected, { atol: 1e-5, rtol: 1e-5, label: variant });
  }
});

gpuTest("matmul with bias computes the encoder's max(x·W + b, 0) per model", async (gpu) => {
  // B is a parameter-like block per model: W [inner][cols] at 0, the bias row after it.
  for (
    const [variant, c] of [
      ["block", { batch: 3, rows: 13, cols: 7, inner: 9, transA: false, transB: false }],
      ["blocked", { batch: 3, rows: 20, cols: 12, inner: 8, transA: false, transB: false }],
    ] as const
  ) {
    const stride = c.inner * c.cols + c.cols + (variant === "blocked" ? 0 : 1);
    const aData = randomFloats(6, c.batch * c.rows * c.inner);
    const bData = randomFloats(7, c.batch * stride);
    const out = createStorage(gpu, "c", c.batch * c.rows * c.cols * 4);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      a: { buffer: upload(gpu, "a", aData), stride: c.rows * c.inner },
      b: { buffer: upload(gpu, "b", bData), stride },
      bias: { offset: c.inner * c.cols, stride },
      c: { buffer: out, stride: c.rows * c.cols },
    });
    await runOps(gpu, [op]);
    const product = cpuMatmul(c, aData, 0, c.rows * c.inner, bData, 0, stride);
    const expected = product.map((v, i) => {
      const m = Math.floor(i / (c.rows * c.cols));
      return Math.max(v + bData[m * stride + c.inner * c.cols + (i % c.cols)]!, 0);
    });
    const got = await readF32(gpu, out);
    assert.ok(got.some((v) => v === 0) && got.some((v) => v > 0), "ReLU both ways");
    assertClose(got, expected, { atol: 1e-5, rtol: 1e-5, label: variant });
  }
});

gpuTest("createMatmul rejects an operand buffer smaller than its shape", async (gpu) => {
  const small = createStorage(gpu, "small", 10 * 4);
  const big = createStorage(gpu, "big", 1000 * 4);
  await assert.rejects(
    createMatmul(gpu, {
      batch: 2,
      rows: 3,
      cols: 4,
      inner: 5,
      a: { buffer: big, stride: 15 },
      b: { buffer: small, stride: 20 },
      c: { buffer: big, stride: 12 },
    }),
    /Operand b \(buffer "small"\): needs 40 32-bit words, the buffer holds 10/,
  );
});

gpuTest("matmul ld reads and writes blocks of columns of wider matrices", async (gpu) => {
  // op(A) = columns [4, 12) of a stored [rows][20] matrix (or rows [4, 12) of [inner][20] with
  // transA); op(B) from a [.][24] matrix; C into columns [8, 8 + cols) of a [rows][28] matrix.
  for (const variant of ["block", "blocked"] as const) {
    for (const transA of [false, true]) {
      const rows = 12, inner = 8, cols = 12, lda = 20, ldb = 24, ldc = 28;
      const aStored = randomFloats(11, 2 * 20 * 20);
      const bStored = randomFloats(12, 2 * inner * ldb);
      const cStored = new Float32Array(2 * rows * ldc);
      const out = upload(gpu, "c", cStored);
      const op = await createMatmul(gpu, {
        batch: 2,
        rows,
        cols,
        inner,
        transA,
        variant,
        a: {
          buffer: upload(gpu, "a", aStored),
          offset: transA ? 4 * lda : 4,
          stride: 400,
          ld: lda,
        },
        b: { buffer: upload(gpu, "b", bStored), stride: inner * ldb, ld: ldb },
        c: { buffer: out, offset: 8, stride: rows * ldc, ld: ldc },
      });
      await runOps(gpu, [op]);
      const got = await readF32(gpu, out);
      for (let m = 0; m < 2; m++) {
        for (let r = 0; r < rows; r++) {
          for (let n = 0; n < ldc; n++) {
            let want = 0;
            if (n >= 8 && n < 8 + cols) {
              for (let k = 0; k < inner; k++) {
                const a = transA
                  ? aStored[m * 400 + (4 + k) * lda + r]!
                  : aStored[m * 400 + r * lda + 4 + k]!;
                want += a * bStored[m * inner * ldb + k * ldb + (n - 8)]!;
              }
            }
            const at = m * rows * ldc + r * ldc + n;
            assert.ok(
              Math.abs(got[at]! - want) <= 1e-5 + 1e-5 * Math.abs(want),
              `${variant} transA ${transA} m ${m} r ${r} n ${n}: ${got[at]} vs ${want}`,
            );
          }
        }
      }
    }
  }
});

gpuTest("matmul with shift reads A − scale·shift per model, in both layouts of A", async (gpu) => {
  // The encoder's (x − b_dec)·W_enc (NN) and the W_enc gradient's (x − b_dec)ᵀ·g (TN): the shift
  // runs along the stored rows of A, scaled per model (0: the model does not apply b_dec).
  for (const variant of ["block", "blocked"] as const) {
    for (const transA of [false, true]) {
      const batch = 3, rows = 12, cols = 8, inner = 16;
      const width = transA ? rows : inner;
      const c: Case = { batch, rows, cols, inner, transA, transB: false };
      const aData = randomFloats(13, batch * rows * inner);
      const bData = randomFloats(14, batch * inner * cols);
      const shiftData = randomFloats(15, 4 + batch * 20); // shift[m] at 4 + 20m
      const scales = Float32Array.from([1, 0, 1]);
      const out = createStorage(gpu, "c", batch * rows * cols * 4);
      const op = await createMatmul(gpu, {
        ...c,
        variant,
        a: { buffer: upload(gpu, "a", aData), stride: rows * inner },
        b: { buffer: upload(gpu, "b", bData), stride: inner * cols },
        c: { buffer: out, stride: rows * cols },
        shift: {
          buffer: upload(gpu, "shift", shiftData),
          offset: 4,
          stride: 20,
          scales: upload(gpu, "scales", scales),
        },
      });
      await runOps(gpu, [op]);
      const shifted = aData.map((v, i) => {
        const m = Math.floor(i / (rows * inner));
        return v - scales[m]! * shiftData[4 + 20 * m + (i % (rows * inner)) % width]!;
      });
      const expected = cpuMatmul(c, shifted, 0, rows * inner, bData, 0, inner * cols);
      assertClose(await readF32(gpu, out), expected, {
        atol: 1e-5,
        rtol: 1e-5,
        label: `${variant} transA ${transA}`,
      });
    }
  }
});

gpuTest(
  "matmul's MSE epilogue writes scale·(A·B + bias − target) and Σ e² per row",
  async (gpu) => {
    // A decoded term: acts [B][S] (columns [0, 8) of 12) · W_dec [8][D] + b_dec − x, per model.
    const batch = 2, rows = 12, inner = 8, cols = 20, S = 12;
    const aData = randomFloats(16, batch * rows * S);
    const stride = inner * cols + cols; // W_dec then the bias row, per model
    const bData = randomFloats(17, batch * stride);
    const target = randomFloats(18, batch * rows * cols);
    const scales = Float32Array.from([0.5, -2]);
    const blocks = residualBlocks(rows, cols);
    const out = createStorage(gpu, "c", batch * rows * cols * 4);
    const rowSq = createStorage(gpu, "rowSq", (4 + batch * rows * blocks) * 4);
    const op = await createMatmul(gpu, {
      batch,
      rows,
      cols,
      inner,
      a: { buffer: upload(gpu, "a", aData), stride: rows * S, ld: S },
      b: { buffer: upload(gpu, "b", bData), stride },
      c: { buffer: out, stride: rows * cols },
      bias: { offset: inner * cols, stride },
      residual: {
        target: { buffer: upload(gpu, "target", target), stride: rows * cols },
        scales: upload(gpu, "scales", scales),
        rowSq: { buffer: rowSq, offset: 4, stride: rows * blocks },
      },
    });
    await runOps(gpu, [op]);
    const got = await readF32(gpu, out);
    const sq = await readF32(gpu, rowSq);
    for (let m = 0; m < batch; m++) {
      for (let r = 0; r < rows; r++) {
        let rowSum = 0;
        for (let n = 0; n < cols; n++) {
          let e = bData[m * stride + inner * cols + n]! - target[(m * rows + r) * cols + n]!;
          for (let k = 0; k < inner; k++) {
            e += aData[m * rows * S + r * S + k]! * bData[m * stride + k * cols + n]!;
          }
          rowSum += e * e;
          const at = (m * rows + r) * cols + n;
          assert.ok(Math.abs(got[at]! - scales[m]! * e) < 1e-5, `C m ${m} r ${r} n ${n}`);
        }
        const parts = sq.subarray(
          4 + m * rows * blocks + r * blocks,
          4 + m * rows * blocks + (r + 1) * blocks,
        );
        const total = parts.reduce((s, v) => s + v, 0);
        assert.ok(Math.abs(total - rowSum) < 1e-4 * (1 + rowSum), `Σe² m ${m} r ${r}`);
      }
    }
  },
);

gpuTest(
  "matmul_blocked's loop iterations per invocation never exceed blockedLoopIterations",
  async (gpu) => {
    // The kernel counts its own loop iterations (COUNT_LOOPS); edge blocks, every blocking, the MSE
    // epilogue. The trainer refuses shapes by this bound (kernelLoopIterations).
    for (
      const tiles of [{ rows: 1, cols: 1 }, { rows: 2, cols: 2 }, { rows: 2, cols: 1 }] as const
    ) {
      for (const residual of [false, true]) {
        const batch = 2, rows = 12, cols = 20, inner = 36;
        const out = createStorage(gpu, "c", batch * rows * cols * 4);
        const b = upload(gpu, "b", randomFloats(19, batch * (inner * cols + cols)));
        const op = await createMatmul(gpu, {
          batch,
          rows,
          cols,
          inner,
          a: {
            buffer: upload(gpu, "a", randomFloats(20, batch * rows * inner)),
            stride: rows * inner,
          },
          b: { buffer: b, stride: inner * cols + cols },
          c: { buffer: out, stride: rows * cols },
          countLoops: true,
          ...(residual
            ? {
              bias: { offset: inner * cols, stride: inner * cols + cols },
              residual: {
                target: {
                  buffer: upload(gpu, "x", randomFloats(21, batch * rows * cols)),
                  stride: rows * cols,
                },
                scales: upload(gpu, "s", Float32Array.from([1, 1])),
                rowSq: { buffer: createStorage(gpu, "sq", 4 * batch * rows * 8), stride: rows * 8 },
              },
            }
            : { tiles }),
        });
        await runOps(gpu, [op]);
        const got = await readF32(gpu, out);
        const used = residual ? { rows: 2, cols: 2 } as const : tiles;
        const bound = blockedLoopIterations(inner, used, residual);
        // Block (r0, n0) stores its count over C[r0][n0..n0+3].
        let most = 0;
        for (let m = 0; m < batch; m++) {
          for (let r0 = 0; r0 < rows; r0 += 4 * used.rows) {
            for (let n0 = 0; n0 < cols; n0 += 4 * used.cols) {
              most = Math.max(most, got[m * rows * cols + r0 * cols + n0]!);
            }
          }
        }
        assert.ok(most > 9 * used.rows, "counted");
        assert.ok(
          most <= bound,
          `${JSON.stringify(used)} residual ${residual}: ${most} > ${bound}`,
        );
        assert.equal(most, bound, "the bound is exact for a full block");
      }
    }
  },
);
