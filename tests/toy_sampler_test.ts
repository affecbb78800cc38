/**
 * Tree-feature batches sampled on the GPU: firing and co-firing rates, mutual exclusivity and
 * magnitudes against the tree's implied probabilities; determinism in (seed, step); GPU = host twin.
 */
import assert from "node:assert/strict";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { GpuTreeSampler } from "../src/toy/gpu_sampler.ts";
import { embedCpu, sampleGroupsCpu } from "../src/toy/cpu_sampler.ts";
import { Rng } from "../src/toy/rng.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { readF32 } from "../src/gpu/buffers.ts";
import { assertClose, gpuTest } from "./_gpu.ts";

/**
 * Features (pre-order): 0 a, 1 a1, 2 a2 (magnitude 3), 3 b, 4 b1 (|N(2, 0.5)|), 5 b2 (|N(0.5, 1)|).
 * a's children are mutually exclusive with weights 0.2, 0.5, 0.3 (a3, not read out).
 */
const mixedTree = new TreeFeatureGenerator({
  activeProb: 1,
  isReadOut: false,
  children: [
    {
      activeProb: 0.6,
      mutuallyExclusiveChildren: true,
      children: [
        { activeProb: 0.2 },
        { activeProb: 0.5, magnitudeMean: 3 },
        { activeProb: 0.3, isReadOut: false },
      ],
    },
    {
      activeProb: 0.3,
      children: [
        { activeProb: 0.4, magnitudeMean: 2, magnitudeStd: 0.5 },
        { activeProb: 0.7, magnitudeMean: 0.5, magnitudeStd: 1 },
      ],
    },
  ],
});

/** Features: 0 c (mutually exclusive children), 1..4 c1..c4 with weights 0.1, 0.3, 0.6, 0. */
const exclusiveTree = new TreeFeatureGenerator({
  activeProb: 0.5,
  mutuallyExclusiveChildren: true,
  children: [{ activeProb: 0.1 }, { activeProb: 0.3 }, { activeProb: 0.6 }, { activeProb: 0 }],
});

/** Runs `steps` steps, copying each step's features out; returns `[steps][G][B][F]`. */
async function drawSteps(gpu: Gpu, sampler: GpuTreeSampler, steps: number): Promise<Float32Array> {
  const size = sampler.features.size;
  const all = gpu.device.createBuffer({
    label: "all steps",
    size: size * steps,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
  const encoder = gpu.device.createCommandEncoder();
  for (let s = 0; s < steps; s++) {
    sampler.encode(encoder);
    encoder.copyBufferToBuffer(sampler.features, 0, all, s * size, size);
  }
  gpu.device.queue.submit([encoder.finish()]);
  const out = await readF32(gpu, all);
  all.destroy();
  return out;
}

/** Rows of group `g` out of `[steps][G][B][F]` as a list of `[F]` views. */
function rowsOf(data: Float32Array, g: number, groups: number, batch: number, width: number) {
  const rows: Float32Array[] = [];
  for (let at = g * batch * width; at < data.length; at += groups * batch * width) {
    for (let b = 0; b < batch; b++) rows.push(data.subarray(at + b * width, at + (b + 1) * width));
  }
  return rows;
}

function assertRate(count: number, n: number, p: number, label: string): void {
  const se = Math.sqrt(Math.max(p * (1 - p), 1e-12) / n);
  const rate = count / n;
  assert.ok(
    Math.abs(rate - p) <= 4 * se,
    `${label}: rate ${rate.toFixed(5)} vs implied ${p} (4 SE = ${(4 * se).toFixed(5)}, n = ${n})`,
  );
}

/** Standard normal CDF by Simpson's rule on the density (independent of the code under test). */
function normalCdf(x: number): number {
  const lo = -12, n = 20000, h = (x - lo) / n;
  const phi = (t: number) => Math.exp(-t * t / 2) / Math.sqrt(2 * Math.PI);
  let s = phi(lo) + phi(x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * phi(lo + i * h);
  return s * h / 3;
}

/** Checks the mean and second moment of |N(mu, sigma)| samples within 4 standard errors. */
function assertFoldedNormal(values: number[], mu: number, sigma: number, label: string): void {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const second = values.reduce((a, v) => a + v * v, 0) / n;
  const varFirst = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  const varSecond = values.reduce((a, v) => a + (v * v - second) ** 2, 0) / (n - 1);
  const foldedMean = sigma * Math.sqrt(2 / Math.PI) * Math.exp(-(mu * mu) / (2 * sigma * sigma)) +
    mu * (1 - 2 * normalCdf(-mu / sigma));
  const foldedSecond = mu * mu + sigma * sigma;
  assert.ok(
    Math.abs(mean - foldedMean) <= 4 * Math.sqrt(varFirst / n),
    `${label}: mean ${mean} vs folded-normal ${foldedMean}`,
  );
  assert.ok(
    Math.abs(second - foldedSecond) <= 4 * Math.sqrt(varSecond / n),
    `${label}: E[v²] ${second} vs ${foldedSecond}`,
  );
  assert.ok(values.every((v) => v >= 0), `${label}: negative magnitude`);
}

const BATCH = 4096;
const STEPS = 25; // 102,400 rows per group

gpuTest(
  "GPU batches match the trees' implied firing, co-firing, exclusivity and magnitudes",
  async (gpu) => {
    const groups = [{ tree: mixedTree, seed: 11 }, { tree: exclusiveTree, seed: 12 }];
    const sampler = await GpuTreeSampler.create(gpu, { groups, batchSize: BATCH, startStep: 1000 });
    const data = await drawSteps(gpu, sampler, STEPS);
    assert.equal(await sampler.readStep(), 1000 + STEPS);
    sampler.destroy();
    const width = sampler.nFeatures;
    assert.equal(width, 6);

    // Group 0: the mixed tree.
    const rows = rowsOf(data, 0, 2, BATCH, width);
    const n = rows.length;
    assert.equal(n, BATCH * STEPS);
    const on = (r: Float32Array, f: number) => r[f] !== 0;
    const count = (pred: (r: Float32Array) => boolean) => rows.filter(pred).length;
    const implied = [0.6, 0.6 * 0.2, 0.6 * 0.5, 0.3, 0.3 * 0.4, 0.3 * 0.7];
    implied.forEach((p, f) => assertRate(count((r) => on(r, f)), n, p, `feature ${f}`));
    const pairs: Array<[number, number, number]> = [
      [0, 1, 0.12],
      [0, 2, 0.3],
      [3, 4, 0.12],
      [3, 5, 0.21], // parent–child
      [4, 5, 0.3 * 0.4 * 0.7],
      [0, 3, 0.6 * 0.3], // independent siblings and branches
    ];
    for (const [i, j, p] of pairs) {
      assertRate(
        count((r) => on(r, i) && on(r, j)),
        n,
        p,
        `${i}&${j}`,
      );
    }
    // Never without the parent; never two mutually exclusive siblings together.
    assert.equal(count((r) => (on(r, 1) || on(r, 2)) && !on(r, 0)), 0);
    assert.equal(count((r) => (on(r, 4) || on(r, 5)) && !on(r, 3)), 0);
    assert.equal(count((r) => on(r, 1) && on(r, 2)), 0);
    // Magnitudes: default 1 and 3 exactly; folded normals (b2 is heavily folded: mean/std = 0.5).
    assert.ok(rows.every((r) => [0, 1].includes(r[0]!) && [0, 1].includes(r[1]!)));
    assert.ok(rows.every((r) => r[2] === 0 || r[2] === 3));
    assertFoldedNormal(rows.filter((r) => on(r, 4)).map((r) => r[4]!), 2, 0.5, "b1");
    assertFoldedNormal(rows.filter((r) => on(r, 5)).map((r) => r[5]!), 0.5, 1, "b2");

    // Group 1: all children read out: exactly one child per active parent, none otherwise.
    const rows1 = rowsOf(data, 1, 2, BATCH, width);
    for (const r of rows1) {
      const children = (r[1] !== 0 ? 1 : 0) + (r[2] !== 0 ? 1 : 0) + (r[3] !== 0 ? 1 : 0) +
        (r[4] !== 0 ? 1 : 0);
      assert.equal(children, r[0] !== 0 ? 1 : 0);
      assert.equal(r[5], 0); // column past this tree's 5 features
    }
    const count1 = (f: number) => rows1.filter((r) => r[f] !== 0).length;
    [0.5, 0.05, 0.15, 0.3, 0].forEach((p, f) =>
      assertRate(count1(f), n, p, `exclusive feature ${f}`)
    );
  },
);

gpuTest("the same (seed, step) gives bit-identical batches and other steps differ", async (gpu) => {
  const groups = [{ tree: mixedTree, seed: 3 }];
  const first = await GpuTreeSampler.create(gpu, { groups, batchSize: 512, startStep: 7 });
  const second = await GpuTreeSampler.create(gpu, { groups, batchSize: 512, startStep: 6 });
  const a = await drawSteps(gpu, first, 1); // step 7
  const b = await drawSteps(gpu, second, 2); // steps 6, 7
  second.setStep(7);
  const c = await drawSteps(gpu, second, 1); // step 7 again
  first.destroy();
  second.destroy();
  const size = a.length;
  assert.deepEqual(new Uint32Array(b.slice(size).buffer), new Uint32Array(a.buffer));
  assert.deepEqual(new Uint32Array(c.buffer), new Uint32Array(a.buffer));
  const differing = b.subarray(0, size).filter((v, i) => v !== a[i]).length;
  assert.ok(differing > size / 10, `steps 6 and 7 differ in only ${differing} of ${size} values`);
});

gpuTest(
  "groups with the same tree and seed share batches; different seeds draw independently",
  async (gpu) => {
    const groups = [
      { tree: mixedTree, seed: 21 },
      { tree: mixedTree, seed: 21 },
      { tree: mixedTree, seed: 22 },
    ];
    const batch = 8192;
    const sampler = await GpuTreeSampler.create(gpu, { groups, batchSize: batch });
    const data = await drawSteps(gpu, sampler, 1);
    sampler.destroy();
    const size = batch * 6;
    const [g0, g1, g2] = [0, 1, 2].map((g) => data.subarray(g * size, (g + 1) * size));
    assert.deepEqual(g1, g0);
    // Feature 0 fires with p = 0.6 in each; independent groups co-fire with p = 0.36.
    let both = 0;
    for (let b = 0; b < batch; b++) if (g0![b * 6] !== 0 && g2![b * 6] !== 0) both++;
    assertRate(both, batch, 0.36, "feature 0 in seeds 21 and 22");
  },
);

gpuTest("GPU batches equal the host twin: activity and std-0 values bit for bit", async (gpu) => {
  const batch = 1024;
  const dIn = 16;
  const rng = new Rng(99);
  const groups = [
    { tree: mixedTree, seed: 5, embedding: Float32Array.from(rng.normals(6 * dIn)) },
    { tree: exclusiveTree, seed: 0xfffffff0, embedding: Float32Array.from(rng.normals(5 * dIn)) },
  ];
  const startStep = 0xfffffffe; // the step counter wraps after 2^32 − 1
  const sampler = await GpuTreeSampler.create(gpu, { groups, batchSize: batch, dIn, startStep });
  for (let s = 0; s < 2; s++) {
    const step = (startStep + s) >>> 0;
    const encoder = gpu.device.createCommandEncoder();
    sampler.encode(encoder);
    gpu.device.queue.submit([encoder.finish()]);
    const gpuFeatures = await readF32(gpu, sampler.features);
    const gpuX = await readF32(gpu, sampler.x!);
    const cpuFeatures = sampleGroupsCpu(groups, step, batch);
    assert.equal(gpuFeatures.length, cpuFeatures.length);
    const noisy = new Set([4, 5]); // group 0's columns with magnitude_std > 0
    const exact: number[] = [],
      gotExact: number[] = [],
      close: number[] = [],
      gotClose: number[] = [];
    for (let i = 0; i < cpuFeatures.length; i++) {
      assert.equal(gpuFeatures[i] === 0, cpuFeatures[i] === 0, `activity differs at ${i}`);
      const g = Math.floor(i / (batch * 6));
      if (g === 0 && noisy.has(i % 6)) {
        close.push(cpuFeatures[i]!);
        gotClose.push(gpuFeatures[i]!);
      } else {
        exact.push(cpuFeatures[i]!);
        gotExact.push(gpuFeatures[i]!);
      }
    }
    assert.deepEqual(gotExact, exact);
    // |mean + std·z| with GPU log/cos/sqrt: a few float32 ulps of the value.
    assertClose(gotClose, close, {
      atol: 2e-5,
      rtol: 1e-5,
      label: `noisy magnitudes, step ${step}`,
    });
    const table = new Float32Array(2 * 6 * dIn);
    table.set(groups[0]!.embedding, 0);
    table.set(groups[1]!.embedding, 6 * dIn);
    const cpuX = embedCpu(cpuFeatures, table, { groups: 2, batch, nFeatures: 6, dIn });
    // Same order of terms; a GPU may fuse each multiply-add (≤ 1 ulp per term).
    assertClose(gpuX, cpuX, { atol: 1e-5, rtol: 1e-5, label: `x, step ${step}` });
  }
  assert.equal(await sampler.readStep(), 0);
  sampler.destroy();
});

/**
 * Features: 0 a (p 0.25), 1 b (0.2 under a, 0.1 without it), 2 c (0.5 under b, 0.3 without it),
 * 3 d (0.4 under c only): firing without the parent at two levels of one path.
 */
const withoutParentTree = new TreeFeatureGenerator({
  activeProb: 1,
  isReadOut: false,
  children: [{
    activeProb: 0.25,
    children: [{
      activeProb: 0.2,
      activeProbWithoutParent: 0.1,
      children: [{
        activeProb: 0.5,
        activeProbWithoutParent: 0.3,
        children: [{ activeProb: 0.4 }],
      }],
    }],
  }],
});

gpuTest(
  "nodes that fire without their parent: conditional rates on the GPU, and the host twin bit for bit",
  async (gpu) => {
    const groups = [{ tree: withoutParentTree, seed: 31 }];
    const sampler = await GpuTreeSampler.create(gpu, { groups, batchSize: BATCH, startStep: 50 });
    const data = await drawSteps(gpu, sampler, STEPS);
    sampler.destroy();
    const rows = rowsOf(data, 0, 1, BATCH, 4);
    const on = (r: Float32Array, f: number) => r[f] !== 0;
    const conditional = (
      f: number,
      given: (r: Float32Array) => boolean,
      p: number,
      label: string,
    ) => {
      const sub = rows.filter(given);
      assertRate(sub.filter((r) => on(r, f)).length, sub.length, p, label);
    };
    assertRate(rows.filter((r) => on(r, 0)).length, rows.length, 0.25, "a");
    conditional(1, (r) => on(r, 0), 0.2, "b | a");
    conditional(1, (r) => !on(r, 0), 0.1, "b | not a");
    conditional(2, (r) => on(r, 1), 0.5, "c | b");
    conditional(2, (r) => !on(r, 1), 0.3, "c | not b");
    conditional(3, (r) => on(r, 2), 0.4, "d | c");
    assert.equal(rows.filter((r) => on(r, 3) && !on(r, 2)).length, 0, "d never without c");
    // The GPU's walk up the path and the host's pre-order pass agree on every row.
    const cpu = sampleGroupsCpu(groups, 50, BATCH);
    assert.deepEqual(data.subarray(0, cpu.length), cpu);
  },
);
