/**
 * shaders/matmul.wgsl against a float64 CPU product, in the three layouts of an SAE step, on shapes
 * that are not multiples of the workgroup or tile size.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats, upload } from "./_kernel_data.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { createStorage, readF32 } from "../src/gpu/buffers.ts";
import { createMatmul, type MatmulVariant } from "../src/kernels/matmul.ts";
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

async function checkCases(gpu: Gpu, variant: MatmulVariant): Promise<void> {
  for (const [i, c] of CASES.entries()) {
    const aData = randomFloats(10 + i, c.batch * c.rows * c.inner);
    const bData = randomFloats(20 + i, c.batch * c.inner * c.cols);
    const a = upload(gpu, "a", aData);
    const b = upload(gpu, "b", bData);
    const out = createStorage(gpu, "c", c.batch * c.rows * c.cols * 4);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      a: { buffer: a, stride: c.rows * c.inner },
      b: { buffer: b, stride: c.inner * c.cols },
      c: { buffer: out, stride: c.rows * c.cols },
    });
    await runOps(gpu, [op]);
    const expected = cpuMatmul(c, aData, 0, c.rows * c.inner, bData, 0, c.inner * c.cols);
    const label = `${variant} ${JSON.stringify(c)}`;
    assertClose(await readF32(gpu, out), expected, { atol: 1e-5, rtol: 1e-5, label });
  }
}

gpuTest("matmul_block computes xW, gWᵀ and xᵀg per model for ragged shapes", async (gpu) => {
  await checkCases(gpu, "block");
});

gpuTest("matmul_tiled computes xW, gWᵀ and xᵀg per model for ragged shapes", async (gpu) => {
  await checkCases(gpu, "tiled");
});

gpuTest("matmul offsets select sub-matrices and stride 0 broadcasts one matrix", async (gpu) => {
  for (const variant of ["block", "tiled"] as const) {
    // A: three models' [9][5] blocks inside a parameter-like buffer at offset 4, stride 60.
    const c: Case = { batch: 3, rows: 9, cols: 6, inner: 5, transA: false, transB: false };
    const aData = randomFloats(1, 4 + 3 * 60);
    const bData = randomFloats(2, 2 + 30);
    const a = upload(gpu, "a", aData);
    const b = upload(gpu, "b", bData);
    const out = createStorage(gpu, "c", (7 + 3 * 60) * 4);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      a: { buffer: a, offset: 4, stride: 60 },
      b: { buffer: b, offset: 2, stride: 0 },
      c: { buffer: out, offset: 7, stride: 60 },
    });
    await runOps(gpu, [op]);
    const expected = cpuMatmul(c, aData, 4, 60, bData, 2, 0);
    const got = await readF32(gpu, out);
    for (let m = 0; m < 3; m++) {
      const block = got.subarray(7 + m * 60, 7 + m * 60 + 54);
      assertClose(block, expected.subarray(m * 54, (m + 1) * 54), {
        atol: 1e-6,
        rtol: 1e-5,
        label: `${variant} model ${m}`,
      });
      // Words between the blocks are untouched.
      assert.ok(got.subarray(7 + m * 60 + 54, 7 + (m + 1) * 60).every((v) => v === 0));
    }
  }
});

gpuTest("matmul with accumulate adds the product into C", async (gpu) => {
  for (const variant of ["block", "tiled"] as const) {
    const c: Case = { batch: 3, rows: 50, cols: 7, inner: 33, transA: true, transB: false };
    const aData = randomFloats(3, 3 * 50 * 33);
    const bData = randomFloats(4, 3 * 33 * 7);
    const cData = randomFloats(5, 3 * 50 * 7);
    const out = upload(gpu, "c", cData);
    const op = await createMatmul(gpu, {
      ...c,
      variant,
      accumulate: true,
      a: { buffer: upload(gpu, "a", aData), stride: 50 * 33 },
      b: { buffer: upload(gpu, "b", bData), stride: 33 * 7 },
      c: { buffer: out, stride: 50 * 7 },
    });
    await runOps(gpu, [op]);
    const expected = cpuMatmul(c, aData, 0, 50 * 33, bData, 0, 33 * 7).map((v, i) => v + cData[i]!);
    assertClose(await readF32(gpu, out), expected, { atol: 1e-5, rtol: 1e-5, label: variant });
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
