/**
 * The one description of the fused kernel's limits, per-model scratch layout and loop structure
 * (shaders/train_fused.wgsl). From it come the TypeScript sizes ({@link fusedScratchFloats},
 * {@link fusedStatCount}, {@link fusedGramCount}), the loop-iteration estimate per phase
 * ({@link fusedLoopIterationsByPhase}) and the WGSL prelude ({@link fusedLayoutFile}: the shape
 * consts, one offset function per scratch segment, the statistic segment ids and the loop-phase
 * ids), so the shader declares none of them by hand.
 *
 * Sizes are products of the shape symbols S latents (`D_SAE`), F read-out features (`N_FEAT`),
 * T loss terms (`T_MAX`), B batch rows (`BATCH`) and W threads per model (`WG`).
 */
import type { ShaderFile } from "../gpu/pipelines.ts";
import { type ParamLayout, type ParamPacking, paramPacking } from "./layout.ts";

/**
 * The largest shapes the fused path takes (its per-thread arrays are sized per shape, see
 * {@link fusedLayoutWgsl}; beyond these they no longer fit a thread's registers usefully).
 */
export const FUSED_LIMITS = {
  /** Latents per SAE. */
  MAX_LATENTS: 64,
  /** Read-out features per tree. */
  MAX_FEATURES: 64,
  /** Threads per model (the workgroup array of partial sums). */
  MAX_WG: 256,
  /** Row statistics one thread accumulates in registers (`PRIVATE_STATS`) or copies (phase G). */
  MAX_STATS: 512,
  /** Gram quantities one thread accumulates and copies into registers. */
  MAX_GRAM: 512,
} as const;

/** A shape symbol of the fused kernel. */
export type FusedSymbol = "S" | "F" | "T" | "B" | "W";
/** The values of the shape symbols. */
export type FusedDims = Record<FusedSymbol, number>;

/** One segment of the scratch: a name (the WGSL offset function is `<prefix>_<name>()`) and size. */
export interface ScratchSegment {
  /** Short name, e.g. `ww` for W_dec W_decᵀ. */
  name: string;
  /** Size as a product of symbols and integers, e.g. `["S", "S"]`. */
  size: readonly (FusedSymbol | number)[];
  /** What it holds, with its index order. */
  doc: string;
}

const WGSL_SYMBOL: Record<FusedSymbol, string> = {
  S: "D_SAE",
  F: "N_FEAT",
  T: "T_MAX",
  B: "BATCH",
  W: "WG",
};

/** Gram quantities of the parameters (phase `gram`), prefix `g_`. */
export const GRAM_SEGMENTS: readonly ScratchSegment[] = [
  { name: "ew", size: ["F", "S"], doc: "E W_enc [F][S]" },
  { name: "bw", size: ["S"], doc: "b_dec W_enc [S]" },
  { name: "ww", size: ["S", "S"], doc: "W_dec W_decᵀ [S][S]" },
  { name: "we", size: ["S", "F"], doc: "W_dec Eᵀ [S][F]" },
  { name: "wb", size: ["S"], doc: "W_dec b_dec [S]" },
  { name: "eb", size: ["F"], doc: "E b_dec [F]" },
  { name: "bb", size: [1], doc: "b_dec·b_dec [1]" },
];

/** Row values (phase `rows` without PRIVATE_STATS), column-major [column][B], prefix `r_`. */
export const ROW_SEGMENTS: readonly ScratchSegment[] = [
  { name: "c", size: ["T", "B"], doc: "dL/dr scale per term [T][B]" },
  { name: "a", size: ["S", "B"], doc: "acts [S][B]" },
  { name: "dpre", size: ["S", "B"], doc: "dL/dpre [S][B]" },
  { name: "dw", size: ["S", "B"], doc: "dL/d||W_dec[j]|| [S][B]" },
  { name: "loss", size: [2, "T", "B"], doc: "recon, then l1, per term [2T][B]" },
];

/**
 * Row statistics (phase `stats`), prefix `s_`; also the segment ids `STAT_<NAME>` of the
 * statistics phase, in this order.
 */
export const STAT_SEGMENTS: readonly ScratchSegment[] = [
  { name: "aa", size: ["S", "S"], doc: "Q_AA [S][S]" },
  { name: "a", size: ["S"], doc: "Q_A [S]" },
  { name: "af", size: ["S", "F"], doc: "Q_AF [S][F]" },
  { name: "pa", size: ["S"], doc: "P_A [S]" },
  { name: "pf", size: ["F"], doc: "P_F [F]" },
  { name: "pc", size: [1], doc: "P_C [1]" },
  { name: "fd", size: ["F", "S"], doc: "S_FD [F][S]" },
  { name: "d", size: ["S"], doc: "S_D [S]" },
  { name: "dw", size: ["S"], doc: "DW [S]" },
  { name: "loss", size: [2, "T"], doc: "loss slots: recon, then l1, per term [2T]" },
];

function evalSize(size: readonly (FusedSymbol | number)[], dims: FusedDims): number {
  return size.reduce<number>((n, f) => n * (typeof f === "number" ? f : dims[f]), 1);
}

function sumSizes(segments: readonly ScratchSegment[], dims: FusedDims): number {
  return segments.reduce((n, s) => n + evalSize(s.size, dims), 0);
}

const dimsOf = (S: number, F: number, T: number, B = 0, W = 0): FusedDims => ({ S, F, T, B, W });

/** Number of Gram quantities per step (`n_gram()` in the shader). */
export function fusedGramCount(dSae: number, nFeatures: number): number {
  return sumSizes(GRAM_SEGMENTS, dimsOf(dSae, nFeatures, 1));
}

/** Size of the per-step row statistics (`n_stats()` in the shader). */
export function fusedStatCount(dSae: number, nFeatures: number, tMax: number): number {
  return sumSizes(STAT_SEGMENTS, dimsOf(dSae, nFeatures, tMax));
}

/**
 * Floats of per-model scratch (`scratch_size()` in the shader): Gram quantities, row values,
 * statistics, then per-thread partial statistics [W][n_stats] (PRIVATE_STATS only) and per-thread
 * partial Gram quantities [W][n_gram]; the Gram quantities, the statistics and each thread's
 * partials start at multiples of 4 floats and are padded to them (they move as vec4s).
 */
export function fusedScratchFloats(
  batch: number,
  dSae: number,
  nFeatures: number,
  tMax: number,
  privateStats: boolean,
  workgroupSize: number,
): number {
  const dims = dimsOf(dSae, nFeatures, tMax, batch, workgroupSize);
  const stats = up4(sumSizes(STAT_SEGMENTS, dims));
  const gram = up4(sumSizes(GRAM_SEGMENTS, dims));
  return up4(gram + sumSizes(ROW_SEGMENTS, dims)) + stats +
    (privateStats ? stats * workgroupSize : 0) + gram * workgroupSize;
}

/** n rounded up to a multiple of 4 (the scratch moves Gram quantities and statistics as vec4s). */
function up4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * Floats of one data group's block of the fused kernel's embedding tables (`embeddings`, built by
 * `embeddingTables` in src/sae/fused_step.ts): E Eᵀ `[F][F]` padded to a multiple of 4 (`gram`,
 * `N_EE4` vec4s in the shader), then Eᵀ `[d_in][featuresPadded]` with features padded to a
 * multiple of 4 (`N_FEAT4` vec4s per input).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fusedEmbeddingTableFloats } from "./fused_layout.ts";
 * // The notebook: 4 features in 50 dimensions.
 * assert.deepEqual(fusedEmbeddingTableFloats(50, 4), { gram: 16, featuresPadded: 4, block: 216 });
 * ```
 */
export function fusedEmbeddingTableFloats(
  dIn: number,
  nFeatures: number,
): { gram: number; featuresPadded: number; block: number } {
  const gram = up4(nFeatures * nFeatures);
  const featuresPadded = up4(nFeatures);
  return { gram, featuresPadded, block: gram + dIn * featuresPadded };
}

/**
 * How the fused kernel holds each model's parameters (and gradient and moments): at a stride of
 * P rounded up to a multiple of 4 (`p_stride()` in the shader), so that they move as vec4s, with
 * W_dec transposed to `[d_in][d_sae]`, so that the column of W_dec each input's Gram and gradient
 * terms need is contiguous (one vec4 per four latents).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fusedParamPacking } from "./fused_layout.ts";
 * import { paramLayout } from "./layout.ts";
 * const packing = fusedParamPacking(paramLayout(50, 4)); // the notebook's SAE: P = 454
 * assert.equal(packing.stride, 456);
 * assert.ok(packing.transposeWDec);
 * ```
 */
export function fusedParamPacking(layout: ParamLayout): ParamPacking {
  return paramPacking(layout, { stride: up4(layout.size), transposeWDec: true });
}

/**
 * The functions of `train` whose loop iterations are estimated (and counted by the
 * `COUNT_LOOPS` debug override), in the order they run; `loop` is the step loop itself.
 */
export const FUSED_LOOP_PHASES = [
  "gram",
  "rows",
  "stats",
  "gradient",
  "project",
  "adam",
  "normalize",
  "loop",
] as const;
/** One of {@link FUSED_LOOP_PHASES}. */
export type FusedLoopPhase = typeof FUSED_LOOP_PHASES[number];

/** The shape quantities the loop-iteration estimate needs. */
export interface FusedShape {
  workgroupSize: number;
  /** Most distinct rows a batch can have after merging identical ones (the batch size if none). */
  distinctRows: number;
  /** Row statistics accumulated per thread (see `PRIVATE_STATS` in the shader). */
  privateStats: boolean;
  /** Whether decoder rows are kept at unit norm (phases `project` and `normalize` run). */
  normalizeDecoder?: boolean;
  batch: number;
  dIn: number;
  dSae: number;
  terms: number;
  maxFeatures: number;
  maxDepth: number;
}

/**
 * Upper bound of the loop iterations (loop bodies run) of one `train` invocation per step, per
 * phase, following each phase function's loop nest in shaders/train_fused.wgsl (the busiest
 * thread: `ceil(n / W)` iterations of a loop over n items strided by W). Mesa's CPU adapters stop
 * an invocation silently after 65,535 iterations, so an undercount truncates loops:
 * tests/fused_loops_test.ts counts them with the `COUNT_LOOPS` override and compares.
 */
export function fusedLoopIterationsByPhase(shape: FusedShape): Record<FusedLoopPhase, number> {
  const { workgroupSize: W, batch: B, dIn: D, dSae: S, terms: T, maxFeatures: F } = shape;
  const per = (n: number) => Math.ceil(n / W);
  const P = 2 * D * S + S + D;
  const N = fusedStatCount(S, F, T);
  // Vec4 groups of the Gram quantities and of the statistics.
  const G4 = Math.ceil(fusedGramCount(S, F) / 4);
  const N4 = Math.ceil(N / 4);
  const normalize = shape.normalizeDecoder ?? true;
  // gram: per column d: load E, W_enc and W_dec; products F (S + 1) + S (1 + S + F);
  // store [G4]; reduce: per(G4) × W; copy [G4] and b_enc [S] into registers, weights [S].
  const latentRow = S % 4 === 0 ? S / 4 : S; // S floats, as vec4s when S % 4 = 0
  const eColumn = Math.ceil(F / 4); // a column of E: F floats as vec4s
  const column = eColumn + latentRow + F * (S + 1) + S * (1 + S + F);
  const gram = per(D) * (1 + column) + G4 + per(G4) * (1 + W) + G4 + latentRow + S;
  // rows: per row: features F, x·x F (1 + F), encode S (1 + F),
  // per term T (mask S, q S (1 + S), l1 2S), ReLU S; then the private statistics or the stores.
  const row = F + F * (1 + F) + S * (1 + F) + T * (1 + S + S * (1 + S) + 2 * S) + S;
  const rowStats = T * (1 + S * (1 + S + F) + F) + F * (1 + S) + S + T;
  const rowStore = T + S;
  const visited = shape.privateStats ? shape.distinctRows : B;
  const rows = per(visited) * (1 + row + (shape.privateStats ? rowStats : rowStore)) +
    (shape.privateStats ? 0 : per(B) * (T + S)) + (shape.privateStats ? N4 : 0);
  // stats: private: per(N4) × W partial sums; else per entry at most T terms × B rows.
  const stats = shape.privateStats ? per(N4) * (1 + W) : per(N) * (1 + T * (1 + B));
  // gradient: copy [N4]; b_enc per(S); per column: E, W_enc and W_dec (vec4s when S % 4 = 0),
  // per latent (F + S + F), F, the W_enc and W_dec gradient stores (the same).
  const gradient = N4 + per(S) +
    per(D) * (1 + eColumn + 2 * latentRow + S * (1 + F + S + F) + F);
  // project: per row j: two loops over D; then the norm over the P4 / 4 vec4s.
  const P4 = up4(P) / 4;
  const project = normalize ? per(S) * (1 + 2 * D) + per(P4) : 0;
  // adam: norm over W, loss slots 2T, record T, Adam per(P4) vec4s.
  const adam = W + 3 * T + per(P4);
  const norm = normalize ? per(S) * (1 + 2 * D) : 0;
  // loop: the step loop itself, and (once per dispatch, counted per step) the E Eᵀ copy.
  const loop = 1 + fusedEmbeddingTableFloats(D, F).gram / 4;
  return { gram, rows, stats, gradient, project, adam, normalize: norm, loop };
}

/** An upper bound of the loop iterations one `train` invocation runs per step. */
export function fusedLoopIterationsPerStep(shape: FusedShape): number {
  const phases = fusedLoopIterationsByPhase(shape);
  return FUSED_LOOP_PHASES.reduce((n, p) => n + phases[p], 0);
}

function wgslSize(size: readonly (FusedSymbol | number)[]): string {
  return size.map((f) => typeof f === "number" ? `${f}u` : WGSL_SYMBOL[f]).join(" * ");
}

function wgslSegments(prefix: string, segments: readonly ScratchSegment[], start: string): string {
  const lines: string[] = [];
  let at = start;
  for (const s of segments) {
    lines.push(`fn ${prefix}_${s.name}() -> u32 { return ${at}; } // ${s.doc}`);
    at = `${prefix}_${s.name}() + ${wgslSize(s.size)}`;
  }
  return lines.join("\n") + "\n" + `fn ${prefix}_end() -> u32 { return ${at}; }`;
}

/** The shape a fused module is generated for: the symbols that size its per-thread arrays. */
export interface FusedModuleShape {
  /** Latents per SAE (`D_SAE`). */
  dSae: number;
  /** Read-out features of the widest tree (`N_FEAT`). */
  nFeatures: number;
  /** Loss terms of the model with the most (`T_MAX`). */
  terms: number;
}

/**
 * The generated WGSL prelude of shaders/train_fused.wgsl for one shape (see the module comment).
 * `D_SAE`, `N_FEAT` and `T_MAX` are constants of the module, not pipeline overrides, because they
 * size the per-thread arrays: arrays of the shape's exact length instead of the fixed limits cut
 * the first compile on Mesa's CPU adapters from about 12 s to under 3 s and the per-process
 * pipeline creation from 1.3 s to 0.35 s (2026-12-02, notebook shape), and train faster.
 */
export function fusedLayoutWgsl(shape: FusedModuleShape): string {
  const { dSae: S, nFeatures: F, terms: T } = shape;
  const statIds = STAT_SEGMENTS.map((s, i) => `const STAT_${s.name.toUpperCase()}: u32 = ${i}u;`);
  const starts = STAT_SEGMENTS.slice(1).map((s) => `u32(e >= q_${s.name}())`);
  const phases = FUSED_LOOP_PHASES.map((p, i) => `const LOOP_${p.toUpperCase()}: u32 = ${i}u;`);
  return [
    "// Generated by src/sae/fused_layout.ts (fusedLayoutWgsl): the fused kernel's shape constants,",
    "// its per-model scratch layout (offsets in floats; S = D_SAE, F = N_FEAT, T = T_MAX, B = BATCH)",
    "// and its loop phases. Edit the tables there, not this text.",
    `const D_SAE: u32 = ${S}u;`,
    `const N_FEAT: u32 = ${F}u;`,
    `const N_FEAT4: u32 = ${up4(F) / 4}u; // vec4s of N_FEAT features`,
    `const T_MAX: u32 = ${T}u;`,
    `const MAX_WG: u32 = ${FUSED_LIMITS.MAX_WG}u;`,
    "// Gram quantities and statistics, and the vec4s they move in (the last one zero-padded).",
    `const N_GRAM: u32 = ${fusedGramCount(S, F)}u;`,
    `const N_STATS: u32 = ${fusedStatCount(S, F, T)}u;`,
    `const N_GRAM4: u32 = ${up4(fusedGramCount(S, F)) / 4}u;`,
    `const N_EE4: u32 = ${
      fusedEmbeddingTableFloats(0, F).gram / 4
    }u; // vec4s of E Eᵀ [N_FEAT][N_FEAT] (embedding tables)`,
    `const N_STATS4: u32 = ${up4(fusedStatCount(S, F, T)) / 4}u;`,
    "// Gram quantities (phase gram):",
    wgslSegments("g", GRAM_SEGMENTS, "0u"),
    "fn n_gram() -> u32 { return N_GRAM; }",
    "// Row values (phase rows), column-major [column][B]:",
    wgslSegments("r", ROW_SEGMENTS, "N_GRAM4 * 4u"),
    "// Row statistics (phase stats), from a multiple of 4:",
    wgslSegments("s", STAT_SEGMENTS, "(r_end() + 3u) / 4u * 4u"),
    "fn n_stats() -> u32 { return N_STATS; }",
    "// Offset of each statistic segment within the statistics (the per-thread copies' layout):",
    ...STAT_SEGMENTS.map((seg) => `fn q_${seg.name}() -> u32 { return s_${seg.name}() - s_aa(); }`),
    "// Per-thread partial statistics [WG][n_stats4] vec4s (PRIVATE_STATS), then Gram partials",
    "// [WG][n_gram4] vec4s.",
    "fn p_part() -> u32 { return s_aa() + N_STATS4 * 4u; }",
    "fn p_gram() -> u32 { return p_part() + select(0u, N_STATS4 * 4u * WG, PRIVATE_STATS); }",
    "fn scratch_size() -> u32 { return p_gram() + N_GRAM4 * 4u * WG; }",
    "// Statistic segments, in layout order, and the segment of statistic e (0 <= e < n_stats()).",
    ...statIds,
    `fn stat_segment(e: u32) -> u32 { return ${starts.join(" + ")}; }`,
    "// Loop phases (slots of the COUNT_LOOPS debug counts).",
    ...phases,
    `const LOOP_PHASES: u32 = ${FUSED_LOOP_PHASES.length}u;`,
    "",
  ].join("\n");
}

/** The generated prelude of one shape as a shader file, included before shaders/train_fused.wgsl. */
export function fusedLayoutFile(shape: FusedModuleShape): ShaderFile {
  return { path: "src/sae/fused_layout.ts (generated)", code: fusedLayoutWgsl(shape) };
}
