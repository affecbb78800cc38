/** shaders/relu.wgsl against CPU loops: forward max(x, 0) and the masked backward. */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats, upload } from "./_kernel_data.ts";
import { createStorage, readF32 } from "../src/gpu/buffers.ts";
import { createReluBackward, createReluForward } from "../src/kernels/relu.ts";
import { runOps } from "../src/kernels/kernel_op.ts";

gpuTest(
  "relu_forward is max(x, 0) and relu_backward passes gradient where acts > 0",
  async (gpu) => {
    for (const count of [1, 3 * 129 * 7, 129]) {
      const pre = randomFloats(5, count);
      pre[0] = 0; // the kink: forward 0, no gradient
      const gradActs = randomFloats(6, count);
      const preBuffer = upload(gpu, "pre", pre);
      const acts = createStorage(gpu, "acts", count * 4);
      const gradPre = createStorage(gpu, "gradPre", count * 4);
      const ops = [
        await createReluForward(gpu, { count, pre: preBuffer, acts }),
        await createReluBackward(gpu, {
          count,
          gradActs: upload(gpu, "gradActs", gradActs),
          acts,
          gradPre,
        }),
      ];
      await runOps(gpu, ops);
      const expectedActs = pre.map((v) => Math.max(v, 0));
      const expectedGrad = gradActs.map((g, i) => pre[i]! > 0 ? g : 0);
      assertClose(await readF32(gpu, acts), expectedActs, { atol: 0, rtol: 0, label: "acts" });
      assertClose(await readF32(gpu, gradPre), expectedGrad, { atol: 0, rtol: 0, label: "grad" });
    }
  },
);

gpuTest("relu covers counts needing more than 65535 workgroups (folded grid)", async (gpu) => {
  const count = 65536 * 64 + 5;
  const pre = randomFloats(7, count);
  const acts = createStorage(gpu, "acts", count * 4);
  await runOps(gpu, [await createReluForward(gpu, { count, pre: upload(gpu, "pre", pre), acts })]);
  const got = await readF32(gpu, acts);
  let bad = 0;
  for (let i = 0; i < count; i++) if (got[i] !== Math.max(pre[i]!, 0)) bad++;
  assert.equal(bad, 0);
});
