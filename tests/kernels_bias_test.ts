/**
 * shaders/bias.wgsl against CPU loops: the sum over rows, on ragged shapes, with sums written into
 * (or added to) a parameter-like buffer.
 */
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats, upload } from "./_kernel_data.ts";
import { readF32 } from "../src/gpu/buffers.ts";
import { createReduceRows } from "../src/kernels/bias.ts";
import { runOps } from "../src/kernels/kernel_op.ts";

gpuTest("reduce_rows writes or accumulates the column sums of each model", async (gpu) => {
  for (const accumulate of [false, true]) {
    for (const [batch, rows, cols] of [[3, 129, 7], [1, 1, 1], [3, 33, 50]] as const) {
      const n = batch * rows * cols;
      const src = randomFloats(3, n);
      const stride = cols + 5;
      const offset = 2;
      const initial = randomFloats(4, offset + batch * stride);
      const sums = upload(gpu, "sums", initial);
      const op = await createReduceRows(gpu, {
        batch,
        rows,
        cols,
        accumulate,
        src: upload(gpu, "src", src),
        sums: { buffer: sums, offset, stride },
      });
      await runOps(gpu, [op]);
      const expected = Float64Array.from(initial);
      for (let m = 0; m < batch; m++) {
        for (let c = 0; c < cols; c++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s += src[(m * rows + r) * cols + c]!;
          const o = offset + m * stride + c;
          expected[o] = (accumulate ? initial[o]! : 0) + s;
        }
      }
      assertClose(await readF32(gpu, sums), expected, {
        atol: 1e-5,
        rtol: 1e-5,
        label: `${batch}x${rows}x${cols} accumulate=${accumulate}`,
      });
    }
  }
});
