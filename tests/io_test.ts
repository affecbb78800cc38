/**
 * Tests of file output: safetensors encoding (bit-exact round trip, header layout, refusals),
 * the SAELens folder layout of saved SAEs, and atomic file and folder replacement.
 */
import assert from "node:assert/strict";
import { replaceDirAtomic, writeFileAtomic } from "../src/io/atomic.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  SafetensorsError,
  tensorToF32,
} from "../src/io/safetensors.ts";
import { loadSae, SAE_CONFIG_KEYS, SaeFileError, saveSae } from "../src/io/sae_files.ts";
import { DEFAULT_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { paramLayout } from "../src/sae/layout.ts";

/** Deterministic pseudo-random floats (mulberry32), so failures reproduce. */
function randomF32(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) - 0.5) * 8;
  }
  return out;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Edge values: ±0, ±∞, extremes, subnormals, and a NaN with a non-default payload. */
function edgeValues(): Float32Array {
  const edge = new Float32Array([
    0,
    -0,
    Infinity,
    -Infinity,
    3.4028234663852886e38,
    -3.4028234663852886e38,
    1.1754943508222875e-38,
    1.401298464324817e-45,
    -1.401298464324817e-45,
    1,
    -1,
    0,
  ]);
  bits(edge)[11] = 0x7fc12345; // NaN with a payload
  return edge;
}

/** Reads the JSON header of safetensors bytes, checking the length prefix and padding. */
function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + len));
  return { header: JSON.parse(text), dataStart: 8 + len };
}

/** Hand-assembles a safetensors file from a header object and raw data. */
function assemble(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("safetensors round trip preserves every float32 bit pattern", () => {
  const a = randomF32(1000, 1);
  const edge = edgeValues();
  const bytes = encodeSafetensors({
    a: { shape: [10, 100], data: a },
    edge: { shape: [12], data: edge },
    empty: { shape: [0, 3], data: new Float32Array(0) },
  }, { note: "β ∞" });
  const file = decodeSafetensors(bytes);
  assert.deepEqual([...file.tensors.keys()], ["a", "edge", "empty"]);
  assert.deepEqual(file.tensors.get("a")!.shape, [10, 100]);
  assert.deepEqual(bits(tensorToF32("a", file.tensors.get("a")!)), bits(a));
  assert.deepEqual(bits(tensorToF32("edge", file.tensors.get("edge")!)), bits(edge));
  assert.equal(tensorToF32("empty", file.tensors.get("empty")!).length, 0);
  assert.deepEqual(file.metadata, { note: "β ∞" });
});

Deno.test("safetensors header is valid JSON, 8-byte aligned, with contiguous offsets", () => {
  const bytes = encodeSafetensors({
    W_enc: { shape: [3, 2], data: randomF32(6, 2) },
    b_enc: { shape: [2], data: randomF32(2, 3) },
    odd: { shape: [1], data: randomF32(1, 4) },
  }, { format: "pt" });
  const { header, dataStart } = readHeader(bytes);
  assert.equal(dataStart % 8, 0);
  assert.deepEqual(header.__metadata__, { format: "pt" });
  assert.deepEqual(header.W_enc, { dtype: "F32", shape: [3, 2], data_offsets: [0, 24] });
  assert.deepEqual(header.b_enc, { dtype: "F32", shape: [2], data_offsets: [24, 32] });
  assert.deepEqual(header.odd, { dtype: "F32", shape: [1], data_offsets: [32, 36] });
  assert.equal(bytes.length, dataStart + 36);
  // The padding is spaces, and the first data float is W_enc[0][0] in little-endian.
  const json = new TextDecoder().decode(bytes.subarray(8, dataStart));
  assert.match(json, /^\{.*\} *$/);
  const first = new DataView(bytes.buffer).getFloat32(dataStart, true);
  assert.equal(first, randomF32(6, 2)[0]);
});

Deno.test("safetensors decoding refuses inconsistent shapes, dtypes and offsets, naming the tensor", () => {
  const data = new Uint8Array(16);
  const cases: [unknown, RegExp][] = [
    [{ w: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, /"w".*needs 12 bytes/],
    [{ w: { dtype: "Q4", shape: [4], data_offsets: [0, 16] } }, /"w": unknown dtype "Q4"/],
    [
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [1], data_offsets: [12, 16] },
      },
      /"b".*begin 12, expected 8/,
    ],
    [{ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, /cover 8 bytes.*has 16/],
    [{ w: { dtype: "F32", shape: [-4], data_offsets: [0, 16] } }, /"w": shape/],
    [{ w: { dtype: "F64", shape: [4], data_offsets: [0, 32] } }, /"w".*past the data/],
  ];
  for (const [header, message] of cases) {
    assert.throws(() => decodeSafetensors(assemble(header, data)), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(() => decodeSafetensors(new Uint8Array(4)), SafetensorsError);
  const f64 = decodeSafetensors(
    assemble({ w: { dtype: "F64", shape: [2], data_offsets: [0, 16] } }, data),
  );
  assert.throws(() => tensorToF32("w", f64.tensors.get("w")!), /"w": expected dtype F32, got F64/);
});

const config: SaeConfig = {
  ...DEFAULT_SAE_CONFIG,
  dIn: 5,
  dSae: 3,
  l1Coefficient: 3e-2,
  matryoshkaSteps: [1, 3],
  matryoshkaInnerLossMultipliers: [0.25, 1],
  skipOuterLoss: true,
  bDecInitMethod: "zeros",
  scaleSparsityPenaltyByDecoderNorm: true,
};

Deno.test("saveSae writes SAELens's folder layout and loadSae reads it back exactly", async () => {
  const root = await Deno.makeTempDir();
  try {
    const layout = paramLayout(config.dIn, config.dSae);
    const params = randomF32(layout.size, 7);
    await saveSae(`${root}/sae`, params, config, { seed: 3, title: "Balanced (β = 0.25)" });
    const names = [...Deno.readDirSync(`${root}/sae`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["cfg.json", "sae_weights.safetensors"]);

    const cfg = JSON.parse(await Deno.readTextFile(`${root}/sae/cfg.json`));
    assert.equal(cfg.d_in, 5);
    assert.equal(cfg.d_sae, 3);
    assert.equal(cfg.architecture, "standard");
    assert.equal(cfg.dtype, "float32");
    assert.equal(cfg.apply_b_dec_to_input, true);
    assert.equal(cfg.normalize_activations, "none");
    assert.deepEqual(cfg.matryoshka_steps, [1, 3]);
    assert.deepEqual(cfg.matryoshka_inner_loss_multipliers, [0.25, 1]);
    assert.equal(cfg.seed, 3);
    for (const key of Object.values(SAE_CONFIG_KEYS)) assert.ok(key in cfg, `cfg.json has ${key}`);

    // The tensors sit in the file in SAELens's shapes: W_enc[d][l] = params[d * dSae + l].
    const file = decodeSafetensors(await Deno.readFile(`${root}/sae/sae_weights.safetensors`));
    const wDec = tensorToF32("W_dec", file.tensors.get("W_dec")!);
    assert.deepEqual(file.tensors.get("W_enc")!.shape, [5, 3]);
    assert.deepEqual(file.tensors.get("W_dec")!.shape, [3, 5]);
    assert.equal(wDec[1 * 5 + 4], params[layout.wDec + 1 * 5 + 4]);

    const loaded = await loadSae(`${root}/sae`);
    assert.deepEqual(bits(loaded.params), bits(params));
    assert.deepEqual(loaded.config, config);
    assert.deepEqual(loaded.layout, layout);
    assert.deepEqual(loaded.extra, { seed: 3, title: "Balanced (β = 0.25)" });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadSae refuses a missing tensor or a wrong shape, naming the tensor and shapes", async () => {
  const root = await Deno.makeTempDir();
  try {
    const layout = paramLayout(config.dIn, config.dSae);
    await saveSae(`${root}/sae`, randomF32(layout.size, 9), config);
    const path = `${root}/sae/sae_weights.safetensors`;
    const file = decodeSafetensors(await Deno.readFile(path));
    const f32 = (name: string) => ({
      shape: file.tensors.get(name)!.shape,
      data: tensorToF32(name, file.tensors.get(name)!),
    });

    await Deno.writeFile(
      path,
      encodeSafetensors({ W_enc: f32("W_enc"), W_dec: f32("W_dec"), b_enc: f32("b_enc") }),
    );
    await assert.rejects(loadSae(`${root}/sae`), (e: unknown) => {
      assert.ok(e instanceof SaeFileError);
      assert.match(e.message, /missing tensor "b_dec" \(expected shape \[5\]\)/);
      return true;
    });

    const wEnc = f32("W_enc");
    await Deno.writeFile(
      path,
      encodeSafetensors({
        W_enc: { shape: [3, 5], data: wEnc.data },
        W_dec: f32("W_dec"),
        b_enc: f32("b_enc"),
        b_dec: f32("b_dec"),
      }),
    );
    await assert.rejects(loadSae(`${root}/sae`), (e: unknown) => {
      assert.ok(e instanceof SaeFileError);
      assert.match(e.message, /tensor "W_enc" has shape \[3, 5\], expected \[5, 3\]/);
      return true;
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadSae refuses an invalid or incomplete cfg.json, naming the file and key", async () => {
  const root = await Deno.makeTempDir();
  try {
    const layout = paramLayout(config.dIn, config.dSae);
    await saveSae(`${root}/sae`, randomF32(layout.size, 11), config);
    const cfgPath = `${root}/sae/cfg.json`;
    const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
    await Deno.writeTextFile(cfgPath, JSON.stringify({ ...cfg, matryoshka_steps: [3, 1] }));
    await assert.rejects(loadSae(`${root}/sae`), (e: unknown) => {
      assert.ok(e instanceof SaeFileError);
      assert.match(e.message, /cfg\.json: .*matryoshkaSteps/);
      return true;
    });
    const { d_sae: _, ...withoutDSae } = cfg;
    await Deno.writeTextFile(cfgPath, JSON.stringify(withoutDSae));
    await assert.rejects(loadSae(`${root}/sae`), /cfg\.json: missing required key "d_sae"/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("replaceDirAtomic leaves the old folder intact when fill throws", async () => {
  const root = await Deno.makeTempDir();
  try {
    await replaceDirAtomic(`${root}/out`, async (tmp) => {
      await Deno.writeTextFile(`${tmp}/a.txt`, "old");
    });
    await assert.rejects(
      replaceDirAtomic(`${root}/out`, async (tmp) => {
        await Deno.writeTextFile(`${tmp}/a.txt`, "half");
        await Deno.writeTextFile(`${tmp}/b.txt`, "new");
        throw new Error("fill failed");
      }),
      /fill failed/,
    );
    assert.equal(await Deno.readTextFile(`${root}/out/a.txt`), "old");
    assert.deepEqual([...Deno.readDirSync(`${root}/out`)].map((e) => e.name), ["a.txt"]);
    // No temporary folder is left beside it.
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["out"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("replaceDirAtomic replaces an existing folder whole, removing stale files", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/out`);
    await Deno.writeTextFile(`${root}/out/stale.txt`, "stale");
    await replaceDirAtomic(`${root}/out`, async (tmp) => {
      await Deno.writeTextFile(`${tmp}/new.txt`, "new");
    });
    assert.deepEqual([...Deno.readDirSync(`${root}/out`)].map((e) => e.name), ["new.txt"]);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["out"]);
    await Deno.writeTextFile(`${root}/file`, "x");
    await assert.rejects(replaceDirAtomic(`${root}/file`, async () => {}), /not a folder/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeFileAtomic replaces a file's contents and leaves no temporary file", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writeFileAtomic(`${root}/f.bin`, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(`${root}/f.bin`, "β");
    assert.deepEqual(await Deno.readFile(`${root}/f.bin`), new Uint8Array([0xce, 0xb2]));
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["f.bin"]);
    await assert.rejects(writeFileAtomic(`${root}/missing/f.bin`, "x"), Deno.errors.NotFound);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["f.bin"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a BatchTopK SAE saves as a JumpReLU (threshold tensor) and loads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config: SaeConfig = {
      ...DEFAULT_SAE_CONFIG,
      dIn: 3,
      dSae: 4,
      architecture: "batchtopk",
      k: 2,
      matryoshkaSteps: [1, 4],
    };
    const params = randomF32(paramLayout(3, 4).size, 9);
    const state = { threshold: 0.375, stepsSinceFired: Uint32Array.from([0, 3, 1200, 7]) };
    await saveSae(dir, params, config, { seed: 2 }, state);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/cfg.json`));
    assert.equal(cfg.architecture, "jumprelu"); // SAELens's inference form
    assert.equal(cfg.training_architecture, "batchtopk");
    assert.equal(cfg.k, 2);
    const file = decodeSafetensors(await Deno.readFile(`${dir}/sae_weights.safetensors`));
    const threshold = file.tensors.get("threshold")!;
    assert.deepEqual(threshold.shape, [4]);
    assert.deepEqual([...tensorToF32("threshold", threshold)], [0.375, 0.375, 0.375, 0.375]);
    const loaded = await loadSae(dir);
    assert.deepEqual(loaded.config, config);
    assert.deepEqual(loaded.params, params);
    assert.equal(loaded.topkState.threshold, 0.375);
    assert.deepEqual([...loaded.topkState.stepsSinceFired], [0, 3, 1200, 7]);
    assert.deepEqual(loaded.extra, { seed: 2 });

    // A threshold that is not one value for every latent is refused, naming the tensor.
    const bad = encodeSafetensors({
      W_enc: { shape: [3, 4], data: new Float32Array(12) },
      W_dec: { shape: [4, 3], data: new Float32Array(12) },
      b_enc: { shape: [4], data: new Float32Array(4) },
      b_dec: { shape: [3], data: new Float32Array(3) },
      threshold: { shape: [4], data: Float32Array.from([1, 2, 3, 4]) },
    }, { format: "pt" });
    await Deno.writeFile(`${dir}/sae_weights.safetensors`, bad);
    await assert.rejects(loadSae(dir), (e: Error) => {
      assert.ok(e instanceof SaeFileError);
      assert.match(e.message, /tensor "threshold"/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a TopK SAE saves as SAELens 5's standard SAE with a TopK activation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config: SaeConfig = {
      ...DEFAULT_SAE_CONFIG,
      dIn: 3,
      dSae: 4,
      architecture: "topk",
      k: 3,
    };
    await saveSae(dir, randomF32(paramLayout(3, 4).size, 4), config);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/cfg.json`));
    assert.deepEqual(
      [cfg.architecture, cfg.activation_fn_str, cfg.activation_fn_kwargs],
      ["standard", "topk", { k: 3 }],
    );
    assert.deepEqual(cfg.steps_since_fired, [0, 0, 0, 0]);
    const loaded = await loadSae(dir);
    assert.equal(loaded.config.architecture, "topk");
    assert.equal(loaded.config.k, 3);
    const file = decodeSafetensors(await Deno.readFile(`${dir}/sae_weights.safetensors`));
    assert.equal(file.tensors.has("threshold"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
