/**
 * shaders/prefix_recon.wgsl against CPU loops: the forward and backward (delta-loss) activation
 * masks of the stacked terms, and the masked sum of the activation gradient; three models with
 * one, two and three terms in a stack of three, on ragged shapes.
 */
import { assertClose, gpuTest } from "./_gpu.ts";
import { modelEntry, randomFloats, term, upload, uploadModels } from "./_kernel_data.ts";
import { createStorage, readF32 } from "../src/gpu/buffers.ts";
import { createMaskActs, createMaskSum } from "../src/kernels/prefix_recon.ts";
import { runOps } from "../src/kernels/kernel_op.ts";
import type { StepShape } from "../src/kernels/step_dims.ts";

gpuTest("prefix masks keep j < end forward and detachBelow ≤ j < end backward", async (gpu) => {
  const entries = [
    modelEntry({ terms: [term({ end: 7 })] }),
    modelEntry({ terms: [term({ end: 2 }), term({ end: 7, detachBelow: 2 })] }),
    modelEntry({
      terms: [term({ end: 0 }), term({ end: 1 }), term({ end: 5, detachBelow: 1 })],
    }),
  ];
  for (const [batch, dSae] of [[129, 7], [1, 7]] as const) {
    const shape: StepShape = { models: 3, batch, dIn: 50, dSae, terms: 3 };
    const { models: M, terms: T } = shape;
    const acts = randomFloats(11, M * batch * dSae, 0, 1);
    const gradStack = randomFloats(12, M * T * batch * dSae);
    const gradInit = randomFloats(13, M * batch * dSae);
    const modelsBuffer = uploadModels(gpu, entries);
    const actsBuffer = upload(gpu, "acts", acts);
    const forward = createStorage(gpu, "forward", M * T * batch * dSae * 4);
    const backward = createStorage(gpu, "backward", M * T * batch * dSae * 4);
    const gradActs = upload(gpu, "gradActs", gradInit);
    const common = { shape, models: modelsBuffer, acts: actsBuffer };
    await runOps(gpu, [
      await createMaskActs(gpu, { ...common, stack: forward, backward: false }),
      await createMaskActs(gpu, { ...common, stack: backward, backward: true }),
      await createMaskSum(gpu, {
        shape,
        models: modelsBuffer,
        gradStack: upload(gpu, "gradStack", gradStack),
        gradActs,
      }),
    ]);

    const wantForward = new Float32Array(M * T * batch * dSae);
    const wantBackward = new Float32Array(M * T * batch * dSae);
    const wantGrad = Float64Array.from(gradInit);
    for (let m = 0; m < M; m++) {
      entries[m]!.plan.terms.forEach((t, ti) => {
        for (let b = 0; b < batch; b++) {
          for (let j = 0; j < dSae; j++) {
            const s = ((m * T + ti) * batch + b) * dSae + j;
            const a = (m * batch + b) * dSae + j;
            if (j < t.end) wantForward[s] = acts[a]!;
            if (j >= t.detachBelow && j < t.end) {
              wantBackward[s] = acts[a]!;
              wantGrad[a]! += gradStack[s]!;
            }
          }
        }
      });
    }
    const label = `B=${batch} S=${dSae}`;
    assertClose(await readF32(gpu, forward), wantForward, { atol: 0, rtol: 0, label });
    assertClose(await readF32(gpu, backward), wantBackward, { atol: 0, rtol: 0, label });
    assertClose(await readF32(gpu, gradActs), wantGrad, { atol: 1e-6, rtol: 1e-6, label });
  }
});
