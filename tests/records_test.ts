/**
 * The record tables (src/gpu/records.ts) against both sides: packing round-trips through the named
 * accessors; every generated WGSL declaration places each field at the word the table says
 * (a probe shader reads every field through the generated struct or offset constant); and no
 * shader declares a record or spells its offsets by hand.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { readU32, uploadStorage } from "../src/gpu/buffers.ts";
import { bindGroup, dispatch, getPipeline, type ShaderFile } from "../src/gpu/pipelines.ts";
import {
  defineRecord,
  packRecords,
  readField,
  readRecord,
  type RecordTable,
  snakeCase,
  writeRecord,
} from "../src/gpu/records.ts";
import {
  LOSS_RECORD,
  LOSS_TERM,
  LOSS_WORDS,
  lossL1Slot,
  lossReconSlot,
  MAX_TERMS,
  MODEL_INFO,
  MODEL_INFO_WORDS,
  MODEL_TABLE_FILE,
  packModelTable,
} from "../src/sae/model_table.ts";
import { STEP_DIMS, STEP_DIMS_STRUCT_FILE, stepDimsWords } from "../src/kernels/step_dims.ts";
import { MATMUL_DIMS, MATMUL_DIMS_FILE } from "../src/kernels/matmul.ts";
import { LR_SCHEDULE, LR_SCHEDULE_FILE } from "../src/kernels/optimizer.ts";
import { FUSED_RECORDS_FILE, FUSED_RUN, FUSED_STATE } from "../src/sae/fused_records.ts";
import { GROUP_HEADER, GROUP_WORDS, WORLD_FILE } from "../src/sae/world.ts";
import {
  flattenTree,
  TREE_FLAT_FILE,
  TREE_HEADER,
  TREE_HEADER_WORDS,
  TREE_NODE,
  TREE_NODE_WORDS,
} from "../src/toy/tree_flat.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { lossPlan } from "../src/sae/loss_plan.ts";
import { resolveSaeConfig } from "../src/sae/config.ts";

/** Every shared record and the generated file that declares it in WGSL. */
const RECORDS: readonly { table: RecordTable; file: ShaderFile }[] = [
  { table: MODEL_INFO, file: MODEL_TABLE_FILE },
  { table: LOSS_RECORD, file: MODEL_TABLE_FILE },
  { table: STEP_DIMS, file: STEP_DIMS_STRUCT_FILE },
  { table: FUSED_RUN, file: FUSED_RECORDS_FILE },
  { table: FUSED_STATE, file: FUSED_RECORDS_FILE },
  { table: GROUP_HEADER, file: WORLD_FILE },
  { table: TREE_HEADER, file: TREE_FLAT_FILE },
  { table: TREE_NODE, file: TREE_FLAT_FILE },
  { table: MATMUL_DIMS, file: MATMUL_DIMS_FILE },
  { table: LR_SCHEDULE, file: LR_SCHEDULE_FILE },
];

Deno.test("packModelTable round-trips every ModelInfo and LossTerm field by name", () => {
  const plan = lossPlan(resolveSaeConfig({ dIn: 4, dSae: 8, matryoshkaSteps: [2, 4, 8] }));
  const optimizer = { lr: 0.5, beta1: 0.25, beta2: 0.125, eps: 2, clipNorm: 4 };
  const words = packModelTable([
    { plan, applyBDecToInput: false, normalizeSaeDecoder: true, optimizer, dataGroup: 0 },
    { plan, applyBDecToInput: true, normalizeSaeDecoder: false, optimizer, dataGroup: 7 },
  ]);
  assert.equal(words.length, 2 * MODEL_INFO_WORDS);
  const got = readRecord(MODEL_INFO, words, MODEL_INFO_WORDS);
  const terms = plan.terms.map((t) => ({
    end: t.end,
    detachBelow: t.detachBelow,
    l1Start: t.l1Start,
    l1End: t.l1End,
    reconKind: t.reconKind === "l2" ? 1 : 0,
    reconMult: Math.fround(t.reconMult),
    l1Mult: Math.fround(t.l1Mult),
  }));
  const zero = {
    end: 0,
    detachBelow: 0,
    l1Start: 0,
    l1End: 0,
    reconKind: 0,
    reconMult: 0,
    l1Mult: 0,
  };
  assert.deepEqual(got, {
    numTerms: plan.terms.length,
    lpNorm: plan.lpNorm,
    l1ByDecoderNorm: 0,
    applyBDecToInput: 1,
    normalizeDecoder: 0,
    ...optimizer,
    dataGroup: 7,
    terms: [...terms, ...Array.from({ length: MAX_TERMS - terms.length }, () => zero)],
  });
  assert.equal(readField(LOSS_TERM, words, MODEL_INFO.offset.terms + LOSS_TERM.words, "end"), 4);
});

Deno.test("the Run uniform and StepDims round-trip every field by name", () => {
  const run = {
    firstModel: 3,
    numModels: 5,
    numSteps: 7,
    totalSteps: 1000,
    warmupSteps: 10,
    decaySteps: 20,
    lrEndFactor: 0.25,
    numGroups: 2,
    counterIndex: 16,
    threads: 8,
  };
  const words = new Uint32Array(FUSED_RUN.words);
  writeRecord(FUSED_RUN, words, 0, run);
  assert.deepEqual(readRecord(FUSED_RUN, words, 0), run);
  assert.equal(FUSED_RUN.words % 4, 0, "uniforms are padded to 16 bytes");

  const dims = stepDimsWords({ models: 2, batch: 8, dIn: 3, dSae: 5, terms: 2 });
  assert.deepEqual(readRecord(STEP_DIMS, dims, 0), {
    models: 2,
    batch: 8,
    dIn: 3,
    dSae: 5,
    terms: 2,
    paramSize: 2 * 3 * 5 + 5 + 3,
    wEnc: 0,
    bEnc: 15,
    wDec: 20,
    bDec: 35,
  });
  assert.equal(dims.length % 4, 0);
});

Deno.test("the loss accessors and old exports agree with the loss record table", () => {
  assert.equal(LOSS_WORDS, LOSS_RECORD.words);
  assert.equal(GROUP_WORDS, GROUP_HEADER.words);
  for (let t = 0; t < MAX_TERMS; t++) {
    assert.equal(lossReconSlot(t), LOSS_RECORD.offset.recon + t);
    assert.equal(lossL1Slot(t), LOSS_RECORD.offset.l1 + t);
  }
  const losses = new Float32Array(LOSS_WORDS * 2);
  losses[LOSS_WORDS + lossL1Slot(3)] = 1.5;
  assert.equal(readField(LOSS_RECORD, losses, LOSS_WORDS, "l1", 3), 1.5);
});

Deno.test("flattenTree writes the tree header and node records by name", () => {
  assert.equal(TREE_HEADER_WORDS, TREE_HEADER.words);
  assert.equal(TREE_NODE_WORDS, TREE_NODE.words);
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{
      activeProb: 0.5,
      mutuallyExclusiveChildren: true,
      magnitudeMean: 2,
      magnitudeStd: 0.25,
      children: [{ activeProb: 0.75 }, { activeProb: 0.25 }],
    }],
  });
  const words = flattenTree(tree);
  assert.deepEqual(readRecord(TREE_HEADER, words, 0), { nNodes: 4, nFeatures: 3 });
  const node = (n: number) =>
    readRecord(TREE_NODE, words, TREE_HEADER.words + 3 + n * TREE_NODE.words);
  assert.deepEqual(node(1), {
    parent: 0,
    flags: 1 | 4,
    activeProb: 0.5,
    activeProbWithoutParent: 0,
    magnitudeMean: 2,
    magnitudeStd: 0.25,
    lo: 0,
    hi: 0,
    feature: 0,
  });
  assert.deepEqual(node(2), {
    parent: 1,
    flags: 1 | 2,
    activeProb: 0.75,
    activeProbWithoutParent: 0,
    magnitudeMean: 1,
    magnitudeStd: 0,
    lo: 0,
    hi: 0.75,
    feature: 1,
  });
  assert.equal(words.length, TREE_HEADER.words + 3 + 4 * TREE_NODE.words);
});

Deno.test("records refuse unknown fields, overlong arrays and non-u32 values", () => {
  const rec = defineRecord("R", [{ name: "a", type: "u32" }, { name: "v", type: "f32", count: 2 }]);
  assert.throws(() => packRecords(rec, [{ b: 1 }]), /no field b/);
  assert.throws(() => packRecords(rec, [{ v: [1, 2, 3] }]), /at most 2/);
  assert.throws(() => packRecords(rec, [{ a: -1 }]), /not a u32/);
  assert.throws(() => readField(rec, packRecords(rec, [{}]), 0, "v", 2), /out of range/);
  assert.throws(
    () => defineRecord("U", [{ name: "v", type: "u32", count: 2 }], { uniform: true }),
    /only scalar/,
  );
});

// --- The generated WGSL against the tables ------------------------------------------------------

/** Every scalar word of a record: its WGSL access path below the record and its word offset. */
function scalarPaths(table: RecordTable): { path: string; offset: number }[] {
  const out: { path: string; offset: number }[] = [];
  for (const f of table.fields) {
    const name = snakeCase(f.name);
    const nested = f.type;
    for (let i = 0; i < (f.count ?? 1); i++) {
      const path = f.count === undefined ? `.${name}` : `.${name}[${i}]`;
      const at = f.offset + i * f.stride;
      if (typeof nested === "string") out.push({ path, offset: at });
      else {
        for (const p of scalarPaths(nested)) {
          out.push({ path: path + p.path, offset: at + p.offset });
        }
      }
    }
  }
  return out;
}

const MARK = 0x40000000; // input word i holds MARK | i: a normal f32, so bitcasts keep its bits

/**
 * Compiles `files` and a probe that writes, for every field of `table`, the word read through the
 * generated struct (element 1 of a storage array, or the uniform) and the generated offset
 * constant; returns the words got and those the table predicts.
 */
async function probe(
  gpu: Gpu,
  table: RecordTable,
  files: readonly ShaderFile[],
): Promise<{ got: number[]; want: number[] }> {
  const { struct = true, constPrefix, uniform } = table.options;
  const lines: string[] = [];
  const want: number[] = [];
  const base = uniform ? 0 : table.words;
  if (struct) {
    lines.push(
      uniform
        ? `@group(0) @binding(0) var<uniform> rec: ${table.name};`
        : `@group(0) @binding(0) var<storage, read> rec: array<${table.name}, 2>;`,
    );
  }
  lines.push("@group(0) @binding(1) var<storage, read_write> out: array<u32>;");
  lines.push("@compute @workgroup_size(1) fn main() {");
  let k = 0;
  if (struct) {
    for (const p of scalarPaths(table)) {
      lines.push(`  out[${k++}] = bitcast<u32>(rec${uniform ? "" : "[1]"}${p.path});`);
      want.push((MARK | (base + p.offset)) >>> 0);
    }
  }
  if (constPrefix) {
    lines.push(`  out[${k++}] = ${constPrefix}_WORDS;`);
    want.push(table.words);
    for (const f of table.fields) {
      lines.push(`  out[${k++}] = ${constPrefix}_${snakeCase(f.name).toUpperCase()};`);
      want.push(f.offset);
    }
  }
  lines.push("}");
  const pipeline = await getPipeline(gpu, {
    label: `records probe ${table.name}`,
    files: [...files, { path: "tests/records_test.ts (probe)", code: lines.join("\n") }],
    entryPoint: "main",
  });
  const input = new Uint32Array((uniform ? 1 : 2) * table.words).map((_, i) => MARK | i);
  const out = uploadStorage(gpu, "probe out", new Uint32Array(Math.max(1, k)));
  const bindings: Record<number, GPUBuffer> = { 1: out };
  if (struct) {
    if (uniform) {
      const buffer = gpu.device.createBuffer({
        label: "probe uniform",
        size: input.byteLength,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      gpu.device.queue.writeBuffer(buffer, 0, input);
      bindings[0] = buffer;
    } else bindings[0] = uploadStorage(gpu, "probe records", input);
  }
  const encoder = gpu.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  dispatch(gpu, pass, pipeline, bindGroup(gpu, pipeline, bindings, "probe"), 1);
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
  return { got: Array.from(await readU32(gpu, out)).slice(0, k), want };
}

gpuTest("the generated WGSL declares every record field at the table's offset", async (gpu) => {
  for (const { table, file } of RECORDS) {
    const { got, want } = await probe(gpu, table, [file]);
    assert.ok(want.length >= table.fields.length, table.name);
    assert.deepEqual(got, want, `${table.name} (${file.path})`);
  }
});

gpuTest("the probe catches a struct whose WGSL fields are in another order", async (gpu) => {
  // Swap two fields of ModelInfo in the generated text only: the table no longer matches.
  const code = MODEL_TABLE_FILE.code.replace(
    /( {2}lr: f32,.*\n)( {2}beta1: f32,.*\n)/,
    "$2$1",
  );
  assert.notEqual(code, MODEL_TABLE_FILE.code);
  const { got, want } = await probe(gpu, MODEL_INFO, [{ path: "swapped", code }]);
  assert.notDeepEqual(got, want);
  // A uniform struct with an extra word is refused too (the bound buffer is the table's size).
  const longer = STEP_DIMS_STRUCT_FILE.code.replace(
    "  _pad0: u32,",
    "  _pad0: u32,\n  _x: vec4<u32>,",
  );
  await assert.rejects(async () => {
    gpu.device.pushErrorScope("validation");
    const r = await probe(gpu, STEP_DIMS, [{ path: "longer", code: longer }]);
    const error = await gpu.device.popErrorScope();
    if (error) throw new Error(error.message);
    assert.deepEqual(r.got, r.want);
  });
});

// --- No hand-written record declarations or offsets in the shaders ------------------------------

/** Patterns of a record declared or an offset spelled by hand, with what they mean. */
const HAND_WRITTEN: readonly [RegExp, string][] = [
  [
    /\bstruct\s+(ModelInfo|LossTerm|Run|StepDims|SampleGroup)\b/,
    "a record struct declared by hand",
  ],
  [
    /\bconst\s+(LOSS|STATE|GROUP|TREE_HEADER|TREE_NODE|TREE_FLAG)_\w+\s*:|\bconst\s+TREE_NONE\b/,
    "a record offset constant declared by hand",
  ],
  [/\bconst\s+(MAX_TERMS|RECON_\w+)\s*:/, "a model-table constant declared by hand"],
  [/\*\s*\d+u\s*\+\s*\d+u/, "a record offset by hand (`* 4u + 2u`)"],
  [/tree_nodes\[[^\]]*\b\d+u\s*\*|tree_nodes\[[^\]]*\*\s*\d+u\b/, "a group header stride by hand"],
  [/\bstate\[[^\]]*\d+u/, "a state entry offset by hand"],
  [/tree_nodes\[[^\]]*\+\s*\d+u\s*\]/, "a tree header or node field offset by hand (`rec + 2u`)"],
  [/array<vec4<u32>>/, "a record read as bare vec4 words (declare it with defineRecord)"],
  [/\blosses\[[^\]]*\d+u/, "a loss record offset by hand"],
];

async function wgslFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await wgslFiles(path));
    else if (e.name.endsWith(".wgsl")) out.push(path);
  }
  return out.sort();
}

/** `file:line: what` for every hand-written record declaration or offset in `code`. */
function handWritten(file: string, code: string): string[] {
  const found: string[] = [];
  code.split("\n").forEach((line, i) => {
    const text = line.replace(/\/\/.*$/, "");
    for (const [re, what] of HAND_WRITTEN) {
      if (re.test(text)) found.push(`${file}:${i + 1}: ${what}: ${line.trim()}`);
    }
  });
  return found;
}

Deno.test("no shader declares a shared record or spells its offsets by hand", async () => {
  const root = new URL("../shaders", import.meta.url).pathname;
  const files = await wgslFiles(root);
  assert.ok(files.length >= 10);
  const found: string[] = [];
  for (const f of files) found.push(...handWritten(f, await Deno.readTextFile(f)));
  assert.deepEqual(found, []);
  // The check itself finds what it is meant to.
  assert.equal(handWritten("x", "let n = tree_nodes[g * 4u + 2u];").length, 3);
  assert.equal(handWritten("x", "const LOSS_WORDS: u32 = 18u;").length, 1);
  assert.equal(handWritten("x", "struct ModelInfo {").length, 1);
  assert.equal(handWritten("x", "state[md.m * 2u + 1u] = 0u;").length, 2);
  assert.equal(handWritten("x", "// state[m * 2u] in a comment").length, 0);
  assert.equal(handWritten("x", "let p = bitcast<f32>(tree_nodes[rec + 2u]);").length, 1);
  assert.equal(handWritten("x", "let f = tree_nodes[tree_base + 1u];").length, 1);
  assert.equal(handWritten("x", "const TREE_NODE_WORDS: u32 = 8u;").length, 1);
  assert.equal(handWritten("x", "var<storage, read> g: array<vec4<u32>>;").length, 1);
});
