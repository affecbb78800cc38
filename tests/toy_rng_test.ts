/**
 * Philox4x32-10 on the host and the GPU: Random123's known-answer vectors, GPU = host bit for bit,
 * the float conversions, and the seeded host stream Rng.
 */
import assert from "node:assert/strict";
import { normalFloat32, philox4x32, Rng, unitFloat, unitFloatOpen0 } from "../src/toy/rng.ts";
import { TREE_SAMPLE_LIB_FILES } from "../src/toy/gpu_sampler.ts";
import { createStorage, readF32, readU32, uploadStorage } from "../src/gpu/buffers.ts";
import { bindGroup, dispatch, getPipeline } from "../src/gpu/pipelines.ts";
import { assertClose, gpuTest } from "./_gpu.ts";

/** Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key, expected output. */
const KAT: Array<[[number, number, number, number], [number, number], number[]]> = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    [0xffffffff, 0xffffffff],
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  ],
  [
    [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    [0xa4093822, 0x299f31d0],
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  ],
];

Deno.test("host Philox4x32-10 reproduces Random123's known-answer vectors", () => {
  for (const [ctr, key, expected] of KAT) assert.deepEqual(philox4x32(ctr, key), expected);
});

const KERNEL = `
@group(0) @binding(0) var<storage, read> inputs: array<vec4<u32>>;        // [N][2]: ctr, key
@group(0) @binding(1) var<storage, read_write> words: array<vec4<u32>>;   // [N]
@group(0) @binding(2) var<storage, read_write> floats: array<vec4<f32>>;  // [N]
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= arrayLength(&words)) { return; }
  let w = philox4x32_10(inputs[2u * i], inputs[2u * i + 1u].xy);
  words[i] = w;
  floats[i] = vec4<f32>(prng_unit(w.x), prng_unit_open0(w.y), prng_normal(w.z, w.w), 0.0);
}
// tree_sample.wgsl is included for its compile check; it needs this declaration.
@group(0) @binding(3) var<storage, read> tree_nodes: array<u32>;
`;

gpuTest(
  "GPU Philox words and unit floats equal the host twin bit for bit, normals within 2e-5",
  async (gpu) => {
    const n = 4096;
    const rng = new Rng(7);
    const cases = [...KAT.map(([c, k]) => [...c, ...k, 0, 0])];
    while (cases.length < n) cases.push([0, 1, 2, 3, 4, 5, 0, 0].map(() => rng.nextU32()));
    const pipeline = await getPipeline(gpu, {
      label: "philox test",
      files: [...TREE_SAMPLE_LIB_FILES, { path: "tests/toy_rng_test.ts", code: KERNEL }],
      entryPoint: "main",
    });
    const inputs = uploadStorage(gpu, "philox inputs", new Uint32Array(cases.flat()));
    const words = createStorage(gpu, "philox words", n * 16);
    const floats = createStorage(gpu, "philox floats", n * 16);
    const encoder = gpu.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(gpu, pass, pipeline, bindGroup(gpu, pipeline, [inputs, words, floats]), n / 64);
    pass.end();
    gpu.device.queue.submit([encoder.finish()]);
    const gotWords = await readU32(gpu, words);
    const gotFloats = await readF32(gpu, floats);
    const expectedWords = new Uint32Array(n * 4);
    const units = new Float32Array(n * 2);
    const gotUnits = new Float32Array(n * 2);
    const normals = new Float32Array(n);
    const gotNormals = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const c = cases[i]!;
      const w = philox4x32([c[0]!, c[1]!, c[2]!, c[3]!], [c[4]!, c[5]!]);
      expectedWords.set(w, 4 * i);
      units.set([unitFloat(w[0]), unitFloatOpen0(w[1])], 2 * i);
      gotUnits.set([gotFloats[4 * i]!, gotFloats[4 * i + 1]!], 2 * i);
      normals[i] = normalFloat32(w[2], w[3]);
      gotNormals[i] = gotFloats[4 * i + 2]!;
    }
    assert.deepEqual(gotWords, expectedWords);
    assert.deepEqual(gotUnits, units);
    // Box–Muller uses log, cos and sqrt, whose float32 accuracy WGSL leaves to the implementation
    // (llvmpipe: max |diff| 1.4e-6 over these 4096 draws, |z| ≤ 5.8).
    assertClose(gotNormals, normals, { atol: 2e-5, rtol: 2e-5, label: "prng_normal" });
    for (const b of [inputs, words, floats]) b.destroy();
  },
);

Deno.test("unit conversions map the extreme words to the ends of their intervals", () => {
  assert.equal(unitFloat(0), 0);
  assert.equal(unitFloat(0xffffffff), 1 - 2 ** -24);
  assert.equal(unitFloatOpen0(0), 2 ** -24);
  assert.equal(unitFloatOpen0(0xffffffff), 1);
  assert.ok(Number.isFinite(normalFloat32(0xffffffff, 0)));
});

Deno.test("Rng is reproducible per seed and its uniforms and normals have the right moments", () => {
  const a = new Rng(123), b = new Rng(123), c = new Rng(124);
  const xs = Array.from({ length: 8 }, () => a.uniform());
  assert.deepEqual(Array.from({ length: 8 }, () => b.uniform()), xs);
  assert.notDeepEqual(Array.from({ length: 8 }, () => c.uniform()), xs);

  const n = 200_000;
  const rng = new Rng(5);
  let sum = 0, sumSq = 0;
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    sumSq += u * u;
  }
  // Uniform: mean 1/2 (SE sqrt(1/12/n)), E[u²] = 1/3 (SE sqrt(4/45/n)); 4 standard errors.
  assert.ok(Math.abs(sum / n - 0.5) < 4 * Math.sqrt(1 / 12 / n));
  assert.ok(Math.abs(sumSq / n - 1 / 3) < 4 * Math.sqrt(4 / 45 / n));
  const z = rng.normals(n);
  const mean = z.reduce((s, v) => s + v, 0) / n;
  const second = z.reduce((s, v) => s + v * v, 0) / n;
  // Normal: mean 0 (SE 1/sqrt(n)), E[z²] = 1 (SE sqrt(2/n)).
  assert.ok(Math.abs(mean) < 4 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(second - 1) < 4 * Math.sqrt(2 / n), `E[z²] ${second}`);
});
