/**
 * Draws batches of the toy world on the GPU (`shaders/sample.wgsl`): G groups, each a tree and a
 * seed, B rows, and optionally their embeddings `x = features @ E`. The groups are packed by
 * `packWorld` (src/sae/world.ts), the one layout the fused kernel and evaluation read too: a
 * `GROUP_HEADER` per group (tree base, seed, nFeatures, embedding base), the trees, the embeddings.
 *
 * Step without per-step uploads: the step index lives in a one-word GPU buffer (`step`). Each
 * {@link GpuTreeSampler.encode} records `sample` (reads the step), `embed`, then `advance` (adds 1
 * on the GPU), so a training loop encodes the same dispatches every step and the host writes the
 * counter only when it wants to jump (`setStep`). The batch of step s is a pure function of
 * (seed, s): groups with the same tree and seed see identical batches (common random numbers);
 * different seeds give independent ones.
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, readF32, readU32, uploadStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, dispatch, getPipeline, type ShaderFile } from "../gpu/pipelines.ts";
import { writeRecord } from "../gpu/records.ts";
import { GROUP_HEADER, GROUP_WORDS, packWorld, WORLD_FILE } from "../sae/world.ts";
import type { TreeFeatureGenerator } from "./tree.ts";
import { checkSeed } from "./rng.ts";
import { checkInteger } from "../check_value.ts";
import { TREE_FLAT_FILE } from "./tree_flat.ts";
import prngSource from "../../shaders/lib/prng.wgsl" with { type: "text" };
import treeSampleSource from "../../shaders/lib/tree_sample.wgsl" with { type: "text" };
import sampleSource from "../../shaders/sample.wgsl" with { type: "text" };

/** The library files a kernel includes to call `tree_feature_value` (it declares `tree_nodes`). */
export const TREE_SAMPLE_LIB_FILES: readonly ShaderFile[] = [
  { path: "shaders/lib/prng.wgsl", code: prngSource },
  TREE_FLAT_FILE,
  { path: "shaders/lib/tree_sample.wgsl", code: treeSampleSource },
];

/** The WGSL files of the sampling kernels, in include order. */
export const SAMPLE_SHADER_FILES: readonly ShaderFile[] = [
  ...TREE_SAMPLE_LIB_FILES,
  WORLD_FILE,
  { path: "shaders/sample.wgsl", code: sampleSource },
];

const WORKGROUP_SIZE = 64;

type EntryPoint = "sample" | "embed" | "advance";

function pipelineFor(gpu: Gpu, entryPoint: EntryPoint): Promise<GPUComputePipeline> {
  return getPipeline(gpu, {
    label: `sample.wgsl:${entryPoint}`,
    files: SAMPLE_SHADER_FILES,
    entryPoint,
    constants: { WORKGROUP_SIZE },
  });
}

/** The largest step of the sampler's u32 step counter (it wraps after it). */
const MAX_STEP = 0xffffffff;

/** One group of the sampler. */
export interface GpuSamplerGroup {
  /** The tree whose features are sampled. */
  tree: TreeFeatureGenerator;
  /** Seed of the group's stream (u32). Same tree and seed as another group: same batches. */
  seed: number;
  /** `[tree.nFeatures][dIn]` embedding (row f = feature f's vector); required when dIn is set. */
  embedding?: Float32Array;
}

/** What {@link GpuTreeSampler.create} builds. */
export interface GpuTreeSamplerOptions {
  /** The groups to sample, each a tree and a seed (one batch stream per group). */
  groups: readonly GpuSamplerGroup[];
  /** Rows per batch (B). */
  batchSize: number;
  /** Embedding width D; when set, every group needs an embedding and `x` is produced. */
  dIn?: number;
  /** The step of the first batch (default 0). */
  startStep?: number;
  /** Prefix for buffer labels. */
  label?: string;
}

/**
 * GPU sampler of tree-feature batches for G groups. Buffers, pipelines and bind groups are made
 * once in {@link GpuTreeSampler.create}; {@link GpuTreeSampler.encode} only records dispatches.
 *
 * @example
 * ```ts ignore
 * const sampler = await GpuTreeSampler.create(gpu, { groups: [{ tree, seed: 1 }], batchSize: 128 });
 * const encoder = gpu.device.createCommandEncoder();
 * sampler.encode(encoder); // batch of the current step into sampler.features, step += 1
 * gpu.device.queue.submit([encoder.finish()]);
 * ```
 */
export class GpuTreeSampler {
  /** Number of groups (G). */
  readonly groupCount: number;
  /** Rows per batch (B). */
  readonly batchSize: number;
  /** Feature columns (F): the widest tree's nFeatures. */
  readonly nFeatures: number;
  /** Embedding width (D), or 0 without embeddings. */
  readonly dIn: number;
  /** `f32 [G][B][F]`: the batch of the last encoded step. */
  readonly features: GPUBuffer;
  /** `f32 [G][B][D]`: its embedding, or null without embeddings. */
  readonly x: GPUBuffer | null;
  /** `u32 [1]`: the step the next `encode` samples. */
  readonly step: GPUBuffer;
  /** The packed world (`tree_nodes`: `packWorld` of src/sae/world.ts): headers, trees, embeddings. */
  readonly treeNodes: GPUBuffer;
  /** Word offset of each group's tree within `treeNodes` (its header's `treeBase`). */
  readonly bases: readonly number[];

  readonly #gpu: Gpu;
  readonly #owned: GPUBuffer[];
  readonly #passes: Array<[GPUComputePipeline, GPUBindGroup, number]>;

  private constructor(
    gpu: Gpu,
    shape: { groupCount: number; batchSize: number; nFeatures: number; dIn: number },
    buffers: {
      features: GPUBuffer;
      x: GPUBuffer | null;
      step: GPUBuffer;
      treeNodes: GPUBuffer;
      owned: GPUBuffer[];
    },
    bases: number[],
    passes: Array<[GPUComputePipeline, GPUBindGroup, number]>,
  ) {
    this.#gpu = gpu;
    this.groupCount = shape.groupCount;
    this.batchSize = shape.batchSize;
    this.nFeatures = shape.nFeatures;
    this.dIn = shape.dIn;
    this.features = buffers.features;
    this.x = buffers.x;
    this.step = buffers.step;
    this.treeNodes = buffers.treeNodes;
    this.#owned = buffers.owned;
    this.bases = bases;
    this.#passes = passes;
  }

  /**
   * Packs the groups into one world (`packWorld`), uploads it and builds the pipelines.
   *
   * @throws {RangeError} for an empty group list, a bad batch size, seed or step, or an embedding
   * of the wrong length.
   */
  static async create(gpu: Gpu, options: GpuTreeSamplerOptions): Promise<GpuTreeSampler> {
    const { groups, batchSize, dIn = 0, startStep = 0, label = "tree sampler" } = options;
    if (groups.length === 0) throw new RangeError("GpuTreeSampler needs at least one group, got 0");
    checkInteger("batchSize", batchSize, 1);
    checkInteger("dIn", dIn, 0);
    checkInteger("startStep", startStep, 0, MAX_STEP);
    groups.forEach((g, i) => checkSeed(`groups[${i}].seed`, g.seed));
    const width = Math.max(...groups.map((g) => g.tree.nFeatures));
    const G = groups.length;

    groups.forEach((g, i) => {
      const e = g.embedding;
      const expected = g.tree.nFeatures * dIn;
      if (dIn > 0 && (!e || e.length !== expected)) {
        throw new RangeError(
          `groups[${i}].embedding must hold ${expected} values ([${g.tree.nFeatures}][${dIn}]) ` +
            `when dIn is ${dIn}, got ${e ? e.length : "none"}`,
        );
      }
    });
    const none = new Float32Array(0);
    const world = packWorld(
      groups.map((g) => ({ tree: g.tree, seed: g.seed, embedding: dIn > 0 ? g.embedding! : none })),
      dIn,
    );
    const bases = groups.map((_, i) => world[i * GROUP_WORDS + GROUP_HEADER.offset.treeBase]!);
    const treeNodes = uploadStorage(gpu, `${label}: tree_nodes (world)`, world);
    const params = uploadUniform(
      gpu,
      `${label}: params`,
      new Uint32Array([G, batchSize, width, dIn]),
    );
    const step = uploadStorage(gpu, `${label}: step`, new Uint32Array([startStep]));
    const features = createStorage(gpu, `${label}: features [G][B][F]`, G * batchSize * width * 4);
    const owned = [treeNodes, params, step, features];

    const [samplePipe, advancePipe] = await Promise.all([
      pipelineFor(gpu, "sample"),
      pipelineFor(gpu, "advance"),
    ]);
    const sampleBindings = { 0: params, 1: features, 4: treeNodes, 6: step };
    const passes: Array<[GPUComputePipeline, GPUBindGroup, number]> = [[
      samplePipe,
      bindGroup(gpu, samplePipe, sampleBindings),
      Math.ceil((G * batchSize * width) / WORKGROUP_SIZE),
    ]];

    let x: GPUBuffer | null = null;
    if (dIn > 0) {
      x = createStorage(gpu, `${label}: x [G][B][D]`, G * batchSize * dIn * 4);
      owned.push(x);
      const embedPipe = await pipelineFor(gpu, "embed");
      passes.push([
        embedPipe,
        bindGroup(gpu, embedPipe, { 0: params, 1: features, 3: x, 4: treeNodes }),
        Math.ceil((G * batchSize * dIn) / WORKGROUP_SIZE),
      ]);
    }
    passes.push([advancePipe, bindGroup(gpu, advancePipe, { 6: step }), 1]);

    return new GpuTreeSampler(
      gpu,
      { groupCount: G, batchSize, nFeatures: width, dIn },
      { features, x, step, treeNodes, owned },
      bases,
      passes,
    );
  }

  /** Records sample (at the current step), embed (if any) and advance (step += 1) into `pass`. */
  encodePass(pass: GPUComputePassEncoder): void {
    for (const [pipeline, group, workgroups] of this.#passes) {
      dispatch(this.#gpu, pass, pipeline, group, workgroups);
    }
  }

  /** Records one step's batch into its own compute pass of `encoder`. */
  encode(encoder: GPUCommandEncoder): void {
    const pass = encoder.beginComputePass({ label: "tree sampler" });
    this.encodePass(pass);
    pass.end();
  }

  /** Sets the step the next batch is drawn for (a host write: for jumps, not for every step). */
  setStep(step: number): void {
    checkInteger("step", step, 0, MAX_STEP);
    this.#gpu.device.queue.writeBuffer(this.step, 0, new Uint32Array([step]));
  }

  /** Reads the step counter back. */
  async readStep(): Promise<number> {
    return (await readU32(this.#gpu, this.step, 0, 1))[0]!;
  }

  /** Releases the sampler's buffers. */
  destroy(): void {
    for (const buffer of this.#owned) buffer.destroy();
  }
}

/**
 * Computes `x = features @ E` with the `embed` entry point of sample.wgsl, for one group.
 *
 * @param features `[B][F]` feature values.
 * @param embedding `[F][D]`.
 * @returns `[B][D]`.
 */
export async function embedOnGpu(
  gpu: Gpu,
  features: Float32Array,
  embedding: Float32Array,
  nFeatures: number,
  dIn: number,
): Promise<Float32Array> {
  if (embedding.length !== nFeatures * dIn) {
    throw new RangeError(
      `embedding must hold nFeatures·dIn = ${nFeatures * dIn} values, got ${embedding.length}`,
    );
  }
  if (features.length % nFeatures !== 0) {
    throw new RangeError(
      `features must hold a whole number of rows of ${nFeatures} values, got ${features.length}`,
    );
  }
  const batch = features.length / nFeatures;
  if (batch === 0) return new Float32Array(0);
  const pipeline = await pipelineFor(gpu, "embed");
  const params = uploadUniform(gpu, "embed: params", new Uint32Array([1, batch, nFeatures, dIn]));
  const featureBuffer = uploadStorage(gpu, "embed: features [B][F]", features.slice());
  // A one-group world without a tree: the header points at the embedding right after it.
  const world = new Uint32Array(GROUP_WORDS + embedding.length);
  writeRecord(GROUP_HEADER, world, 0, { nFeatures, embeddingBase: GROUP_WORDS });
  world.set(new Uint32Array(embedding.buffer, embedding.byteOffset, embedding.length), GROUP_WORDS);
  const table = uploadStorage(gpu, "embed: world (header, E [F][D])", world);
  const x = createStorage(gpu, "embed: x [B][D]", batch * dIn * 4);
  const group = bindGroup(gpu, pipeline, { 0: params, 1: featureBuffer, 3: x, 4: table });
  const encoder = gpu.device.createCommandEncoder({ label: "embed" });
  const pass = encoder.beginComputePass({ label: "embed" });
  dispatch(gpu, pass, pipeline, group, Math.ceil((batch * dIn) / WORKGROUP_SIZE));
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
  try {
    return await readF32(gpu, x);
  } finally {
    for (const buffer of [params, featureBuffer, table, x]) buffer.destroy();
  }
}
