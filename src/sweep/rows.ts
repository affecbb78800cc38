/**
 * One row of a sweep: what is measured on one trained SAE (every parent–child edge read on the
 * parent's matched latent: encoder and decoder cosine with the child and the absorption gap, from
 * the scorecard of src/metrics/scorecard.ts; latent 0's encoder and decoder cosine similarity with
 * every true feature; the final losses per Matryoshka prefix), and its JSON form
 * (β = ∞ as `"inf"`, non-finite numbers as `null`), used by the chunk records and `sweep.json`.
 *
 * `metrics` is the extension point for per-SAE metrics added later (one number per name); the
 * csv writer turns them into columns (src/sweep/outputs.ts).
 */
import type { TrainResult } from "../sae/train.ts";
import type { MatryoshkaSAE } from "../sae/sae.ts";
import { decoderCosSims, encoderCosSims } from "../metrics/cosine.ts";
import { resolvedSteps } from "../sae/loss_plan.ts";
import type { SaeMetrics } from "../metrics/evaluate.ts";
import type { Scorecard } from "../metrics/scorecard.ts";

/**
 * What the sweep records for one SAE.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowToJson, type SweepRow } from "./rows.ts";
 * const id = { tree: "pair", childProbs: [0.1, 0.3], beta: Infinity, seed: 0, round: 0 };
 * const row: SweepRow = {
 *   ...id,
 *   edgeEncoderCos: [0.2, 0.1],
 *   edgeDecoderCos: [0.3, NaN],
 *   absorptionGap: [0, 0.01],
 *   encoderCos: [0.9, 0.2, 0.1],
 *   decoderCos: [0.95, 0.3, NaN],
 *   losses: { total: 0.5, gradNorm: 1.2, recon: [0.2, 0.1], l1: [0.1, 0.1] },
 *   stepsDone: 300,
 *   divergedAt: null,
 *   metrics: { l0: 1.4 },
 * };
 * const json = rowToJson(row);
 * assert.deepEqual([json.beta, json.decoderCos], ["inf", [0.95, 0.3, null]]);
 * ```
 */
export interface SweepRow {
  /** Name of the tree. */
  tree: string;
  /** Firing probability of each child of the parent. */
  childProbs: number[];
  /** β of the inner prefix; Infinity for the detached setup. */
  beta: number;
  /** Seed of the toy model and of the batches. */
  seed: number;
  /** 0 for the grid; r for the r-th refinement round. */
  round: number;
  /** Each edge's parent latent's encoder cosine with the child, in the tree's edge order. */
  edgeEncoderCos: number[];
  /** Each edge's parent latent's decoder cosine with the child. */
  edgeDecoderCos: number[];
  /** Each edge's absorption gap on held-out rows (NaN when undefined). */
  absorptionGap: number[];
  /** Latent 0's encoder cosine similarity with every true feature (feature order). */
  encoderCos: number[];
  /** Latent 0's decoder cosine similarity with every true feature. */
  decoderCos: number[];
  /** Final losses (the last step's batch), multiplied as in the total. */
  losses: {
    /** The total loss. */
    total: number;
    /** Global gradient norm before clipping. */
    gradNorm: number;
    /** Reconstruction loss of each Matryoshka prefix (0 for a prefix with β = 0). */
    recon: number[];
    /** Sparsity loss of each Matryoshka prefix (0 for a prefix with β = 0). */
    l1: number[];
  };
  /** Steps trained. */
  stepsDone: number;
  /** Step at which the SAE diverged, or null. */
  divergedAt: number | null;
  /** Further per-SAE metrics by name (extension point; each becomes a csv column). */
  metrics: Record<string, number>;
}

/** The identity of a row inside the sweep. */
export interface RowIdentity {
  /** Name of the tree. */
  tree: string;
  /** Firing probability of each child of the parent. */
  childProbs: number[];
  /** β of the inner prefix; Infinity for the detached setup. */
  beta: number;
  /** Seed of the toy model and of the batches. */
  seed: number;
  /** 0 for the grid; r for the r-th refinement round. */
  round: number;
}

/**
 * Measures a trained SAE: its edge readings (from its scorecard), latent 0's cosine similarities
 * and the final losses per prefix.
 */
export function measureRow(
  identity: RowIdentity,
  sae: MatryoshkaSAE,
  embedding: Float32Array,
  nFeatures: number,
  result: TrainResult,
  scorecard: Scorecard,
): SweepRow {
  const encoder = encoderCosSims(sae.params, sae.layout, embedding, nFeatures)[0]!;
  const decoder = decoderCosSims(sae.params, sae.layout, embedding, nFeatures)[0]!;
  const nPrefixes = resolvedSteps(sae.config).length;
  const recon = new Array<number>(nPrefixes).fill(0);
  const l1 = new Array<number>(nPrefixes).fill(0);
  sae.lossPlan().terms.forEach((term, t) => {
    if (term.kind !== "prefix") return;
    recon[term.prefixIndex] = result.finalLosses.recon[t]!;
    l1[term.prefixIndex] = result.finalLosses.l1[t]!;
  });
  return {
    ...identity,
    childProbs: [...identity.childProbs],
    edgeEncoderCos: scorecard.edges.map((e) => e.encoderCos),
    edgeDecoderCos: scorecard.edges.map((e) => e.decoderCos),
    absorptionGap: scorecard.edges.map((e) => e.absorptionGap),
    encoderCos: encoder,
    decoderCos: decoder,
    losses: {
      total: result.finalLosses.total,
      gradNorm: result.finalLosses.gradNorm,
      recon,
      l1,
    },
    stepsDone: result.stepsDone,
    divergedAt: result.error ? result.error.step : null,
    metrics: {},
  };
}

/** A row as JSON: β = ∞ as `"inf"`, NaN and ±∞ elsewhere as `null`. */
/**
 * The synthetic-SAE metrics of one SAE as named csv columns (src/metrics/evaluate.ts): MCC of
 * encoder and decoder, explained variance (full and per prefix), L0, true L0, dead latents and
 * shrinkage.
 */
export function metricColumns(m: SaeMetrics): Record<string, number> {
  const columns: Record<string, number> = {
    mcc_encoder: m.mccEncoder,
    mcc_decoder: m.mccDecoder,
    explained_variance: m.explainedVariance,
  };
  m.prefixExplainedVariance.forEach((v, i) => columns[`explained_variance_prefix_${i + 1}`] = v);
  columns.l0 = m.l0;
  columns.true_l0 = m.trueL0;
  columns.dead_latents = m.deadCount;
  columns.shrinkage = m.shrinkage;
  return columns;
}

/**
 * A sweep row as written to sweep.json (β = ∞ as the string "inf").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowFromJson, type SweepRowJson } from "./rows.ts";
 * const id = { tree: "pair", childProbs: [0.1, 0.3], beta: "inf" as const, seed: 1, round: 0 };
 * const json: SweepRowJson = {
 *   ...id,
 *   edgeEncoderCos: [0.2, 0.1],
 *   edgeDecoderCos: [0.3, 0.2],
 *   absorptionGap: [0, null],
 *   encoderCos: [0.9, 0.2, 0.1],
 *   decoderCos: [0.95, 0.3, 0.2],
 *   losses: { total: 0.5, gradNorm: 1.2, recon: [0.2, 0.1], l1: [0.1, 0.1] },
 *   stepsDone: 300,
 *   divergedAt: null,
 *   metrics: {},
 * };
 * assert.equal(rowFromJson(json, "example").beta, Infinity);
 * assert.throws(() => rowFromJson({ ...json, seed: -1 }, "example"), /field "seed"/);
 * ```
 */
export type SweepRowJson = Omit<SweepRow, "beta" | "absorptionGap"> & {
  beta: number | "inf";
  /** null where the gap is undefined (no held-out row has both parent and child). */
  absorptionGap: (number | null)[];
};

const finite = (v: number) => Number.isFinite(v) ? v : null;
const finiteList = (list: number[]) => list.map(finite) as number[];

/** The JSON form of a row (see {@link SweepRowJson}). */
export function rowToJson(row: SweepRow): SweepRowJson {
  return {
    tree: row.tree,
    childProbs: row.childProbs,
    beta: row.beta === Infinity ? "inf" : row.beta,
    seed: row.seed,
    round: row.round,
    edgeEncoderCos: finiteList(row.edgeEncoderCos),
    edgeDecoderCos: finiteList(row.edgeDecoderCos),
    absorptionGap: finiteList(row.absorptionGap),
    encoderCos: finiteList(row.encoderCos),
    decoderCos: finiteList(row.decoderCos),
    losses: {
      total: finite(row.losses.total) as number,
      gradNorm: finite(row.losses.gradNorm) as number,
      recon: finiteList(row.losses.recon),
      l1: finiteList(row.losses.l1),
    },
    stepsDone: row.stepsDone,
    divergedAt: row.divergedAt,
    metrics: Object.fromEntries(
      Object.entries(row.metrics).map(([k, v]) => [k, finite(v) as number]),
    ),
  };
}

/** A JSON number, or `null` for a non-finite one (as {@link rowToJson} writes it). */
type JsonNumber = number | null;

/**
 * Reads a row from its JSON form (`null` back to NaN), checking the type of every field.
 *
 * @param where the record (and row) the row came from, for error messages.
 * @throws {RangeError} naming the record, the field, what it should hold and what it holds.
 */
export function rowFromJson(json: unknown, where: string): SweepRow {
  const refuse = (field: string, expected: string, got: unknown): never => {
    const shown = JSON.stringify(got) ?? String(got);
    throw new RangeError(
      `Invalid sweep record ${where}: field "${field}" should be ${expected}, got ` +
        `${shown.length > 40 ? `${shown.slice(0, 39)}…` : shown}; delete the record to retrain ` +
        "its SAEs",
    );
  };
  const isNum = (v: unknown): v is JsonNumber =>
    v === null || (typeof v === "number" && Number.isFinite(v));
  const nums = (field: string, v: unknown): number[] => {
    if (!Array.isArray(v) || !v.every(isNum)) refuse(field, "a list of numbers", v);
    return (v as JsonNumber[]).map((x) => x ?? NaN);
  };
  const num = (field: string, v: unknown): number => {
    if (!isNum(v)) refuse(field, "a number", v);
    return (v as JsonNumber) ?? NaN;
  };
  const int = (field: string, v: unknown, min: number): number => {
    if (!(typeof v === "number" && Number.isSafeInteger(v) && v >= min)) {
      refuse(field, `an integer ≥ ${min}`, v);
    }
    return v as number;
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    refuse("row", "an object", json);
  }
  const j = json as Record<string, unknown>;
  if (typeof j.tree !== "string") refuse("tree", "a string", j.tree);
  if (
    !(j.beta === "inf" || (typeof j.beta === "number" && Number.isFinite(j.beta) && j.beta >= 0))
  ) {
    refuse("beta", 'a number ≥ 0 or "inf"', j.beta);
  }
  const losses = j.losses as Record<string, unknown> | null;
  if (typeof losses !== "object" || losses === null || Array.isArray(losses)) {
    refuse("losses", "an object", losses);
  }
  const metrics = j.metrics ?? {};
  if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics)) {
    refuse("metrics", "an object", metrics);
  }
  const childProbs = nums("childProbs", j.childProbs);
  if (childProbs.some((p) => !(p >= 0 && p <= 1))) {
    refuse("childProbs", "probabilities in [0, 1]", j.childProbs);
  }
  const row: SweepRow = {
    tree: j.tree as string,
    childProbs,
    beta: j.beta === "inf" ? Infinity : j.beta as number,
    seed: int("seed", j.seed, 0),
    round: int("round", j.round, 0),
    edgeEncoderCos: nums("edgeEncoderCos", j.edgeEncoderCos),
    edgeDecoderCos: nums("edgeDecoderCos", j.edgeDecoderCos),
    absorptionGap: nums("absorptionGap", j.absorptionGap),
    encoderCos: nums("encoderCos", j.encoderCos),
    decoderCos: nums("decoderCos", j.decoderCos),
    losses: {
      total: num("losses.total", losses!.total),
      gradNorm: num("losses.gradNorm", losses!.gradNorm),
      recon: nums("losses.recon", losses!.recon),
      l1: nums("losses.l1", losses!.l1),
    },
    stepsDone: int("stepsDone", j.stepsDone, 0),
    divergedAt: j.divergedAt === null ? null : int("divergedAt", j.divergedAt, 1),
    metrics: Object.fromEntries(
      Object.entries(metrics as Record<string, unknown>).map(([k, v]) => [
        k,
        num(`metrics.${k}`, v),
      ]),
    ),
  };
  const edges = row.edgeEncoderCos.length;
  if (row.edgeDecoderCos.length !== edges || row.absorptionGap.length !== edges) {
    refuse("edgeDecoderCos", `lists as long as edgeEncoderCos (${edges})`, j.edgeDecoderCos);
  }
  if (row.losses.recon.length !== row.losses.l1.length) {
    refuse("losses.l1", `a list as long as losses.recon (${row.losses.recon.length})`, j.losses);
  }
  return row;
}
