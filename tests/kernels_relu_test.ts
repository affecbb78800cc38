/** shaders/relu.wgsl against CPU loops: the masked backward, on counts needing a folded grid. */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats, upload } from "./_kernel_data.ts";
import { createStorage, readF32 } from "../src/gpu/buffers.ts";
import { createReluBackward } from "../src/kernels/relu.ts";
import { runOps } from "../src/kernels/kernel_op.ts";

gpuTest("relu_backward passes the gradient where acts > 0", async (gpu) => {
  for (const count of [1, 3 * 129 * 7, 129]) {
    const acts = randomFloats(5, count).map((v) => Math.max(v, 0));
    acts[0] = 0; // the kink: no gradient
    const gradActs = randomFloats(6, count);
    const gradPre = createStorage(gpu, "gradPre", count * 4);
    await runOps(gpu, [
      await createReluBackward(gpu, {
        count,
        gradActs: upload(gpu, "gradActs", gradActs),
        acts: upload(gpu, "acts", acts),
        gradPre,
      }),
    ]);
    const expected = gradActs.map((g, i) => acts[i]! > 0 ? g : 0);
    assertClose(await readF32(gpu, gradPre), expected, { atol: 0, rtol: 0, label: "grad" });
  }
});

gpuTest("relu covers counts needing more than 65535 workgroups (folded grid)", async (gpu) => {
  const count = 65536 * 64 + 5;
  const acts = randomFloats(7, count);
  const gradActs = new Float32Array(count).fill(1);
  const gradPre = createStorage(gpu, "gradPre", count * 4);
  await runOps(gpu, [
    await createReluBackward(gpu, {
      count,
      gradActs: upload(gpu, "gradActs", gradActs),
      acts: upload(gpu, "acts", acts),
      gradPre,
    }),
  ]);
  const got = await readF32(gpu, gradPre);
  let bad = 0;
  for (let i = 0; i < count; i++) if (got[i] !== (acts[i]! > 0 ? 1 : 0)) bad++;
  assert.equal(bad, 0);
});
