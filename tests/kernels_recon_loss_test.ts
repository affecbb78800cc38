/**
 * shaders/recon_loss.wgsl against float64 CPU loops: per-term MSE and L2 losses and their
 * gradient w.r.t. the partial reconstructions (including L2's zero gradient at e = 0, a b_dec term
 * with end 0 and empty stacked terms), the loss record from the per-row values (loss_total), and the b_dec gradient with and without
 * b_dec applied to the encoder input.
 */
import { assertClose, gpuTest } from "./_gpu.ts";
import { modelEntry, randomFloats, term, upload, uploadModels } from "./_kernel_data.ts";
import { readF32 } from "../src/gpu/buffers.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { LOSS_WORDS, lossL1Slot, lossReconSlot, MAX_TERMS } from "../src/sae/model_table.ts";
import {
  createBDecGrad,
  createLossTotal,
  createReconLoss,
  termRowsWords,
} from "../src/kernels/recon_loss.ts";
import { runOps } from "../src/kernels/kernel_op.ts";
import type { StepShape } from "../src/kernels/step_dims.ts";

gpuTest("recon losses, their gradient and the b_dec gradient match the CPU", async (gpu) => {
  const entries = [
    modelEntry({ terms: [term({ end: 7, reconKind: "mse", reconMult: 1 })] }, {
      applyBDecToInput: true,
    }),
    modelEntry({
      terms: [
        term({ kind: "bdec", end: 0, reconKind: "mse", reconMult: 0.02 }),
        term({ end: 2, reconKind: "mse", reconMult: 0.25 }),
        term({ kind: "outer", end: 7, reconKind: "l2", reconMult: 1.5 }),
      ],
    }, { applyBDecToInput: false }),
    modelEntry({
      terms: [term({ end: 3, reconKind: "l2", reconMult: 1 }), term({ end: 7, reconMult: 0 })],
    }, { applyBDecToInput: true }),
  ];
  for (const batch of [129, 1]) {
    const shape: StepShape = { models: 3, batch, dIn: 50, dSae: 7, terms: 3 };
    const { models: M, dIn: D, dSae: S, terms: T } = shape;
    const layout = paramLayout(D, S);
    const x = randomFloats(21, M * batch * D);
    const params = randomFloats(22, M * layout.size);
    const decoded = randomFloats(23, M * T * batch * D);
    // Model 2, term 0, row 0 reconstructs x exactly (b_dec = 0): L2's gradient there is 0.
    params.fill(0, 2 * layout.size + layout.bDec, 3 * layout.size);
    decoded.set(x.subarray(2 * batch * D, 2 * batch * D + D), 2 * T * batch * D);
    const lossesInit = randomFloats(24, M * LOSS_WORDS);
    // Per-row sparsity values (as sparsity_forward leaves them): their means enter the l1 slots.
    const termRowsInit = randomFloats(26, termRowsWords(shape), 0, 1);
    const termRows = upload(gpu, "termRows", termRowsInit);
    const grads = upload(gpu, "grads", randomFloats(25, M * layout.size));
    const gradsInit = await readF32(gpu, grads);
    const rg = upload(gpu, "rg", decoded);
    const losses = upload(gpu, "losses", lossesInit);
    const models = uploadModels(gpu, entries);
    const paramsBuffer = upload(gpu, "params", params);
    await runOps(gpu, [
      await createReconLoss(gpu, {
        shape,
        models,
        x: upload(gpu, "x", x),
        params: paramsBuffer,
        rg,
        termRows,
      }),
      await createLossTotal(gpu, { shape, models, termRows, losses }),
      await createBDecGrad(gpu, { shape, models, params: paramsBuffer, rg, grads }),
    ]);

    const wantRg = new Float64Array(M * T * batch * D);
    const wantLosses = Float64Array.from(lossesInit);
    const wantGrads = Float64Array.from(gradsInit);
    for (let m = 0; m < M; m++) {
      const terms = entries[m]!.plan.terms;
      const bDec = (d: number) => params[m * layout.size + layout.bDec + d]!;
      let total = 0;
      for (let t = 0; t < MAX_TERMS; t++) {
        let value = 0;
        const tm = terms[t];
        if (tm) {
          let sum = 0;
          for (let b = 0; b < batch; b++) {
            const row = ((m * T + t) * batch + b) * D;
            const e = Array.from(
              { length: D },
              (_, d) => decoded[row + d]! + bDec(d) - x[(m * batch + b) * D + d]!,
            );
            const sq = e.reduce((s, v) => s + v * v, 0);
            const norm = Math.sqrt(sq);
            sum += tm.reconKind === "l2" ? norm : sq;
            const coef = tm.reconKind === "l2"
              ? (norm > 0 ? tm.reconMult / (batch * norm) : 0)
              : 2 * tm.reconMult / batch;
            e.forEach((v, d) => wantRg[row + d] = coef * v);
          }
          value = tm.reconMult * sum / batch;
        }
        wantLosses[m * LOSS_WORDS + lossReconSlot(t)] = value;
        let l1 = 0;
        if (tm && tm.l1Mult !== 0) {
          const rows = termRowsInit.subarray(
            ((2 * m + 1) * T + t) * batch,
            ((2 * m + 1) * T + t + 1) * batch,
          );
          l1 = tm.l1Mult * rows.reduce((a, v) => a + v, 0) / batch;
        }
        wantLosses[m * LOSS_WORDS + lossL1Slot(t)] = l1;
        total += value + l1;
      }
      wantLosses[m * LOSS_WORDS] = total;
      for (let d = 0; d < D; d++) {
        let g = 0;
        for (let r = 0; r < T * batch; r++) g += wantRg[(m * T * batch + r) * D + d]!;
        if (entries[m]!.applyBDecToInput) {
          for (let j = 0; j < S; j++) {
            g -= params[m * layout.size + layout.wEnc + d * S + j]! *
              gradsInit[m * layout.size + layout.bEnc + j]!;
          }
        }
        wantGrads[m * layout.size + layout.bDec + d] = g;
      }
    }
    const label = `B=${batch}`;
    assertClose(await readF32(gpu, rg), wantRg, { atol: 1e-7, rtol: 1e-4, label: `${label} rg` });
    assertClose(await readF32(gpu, losses), wantLosses, {
      atol: 1e-5,
      rtol: 1e-5,
      label: `${label} losses`,
    });
    assertClose(await readF32(gpu, grads), wantGrads, {
      atol: 1e-5,
      rtol: 1e-5,
      label: `${label} grads`,
    });
  }
});
