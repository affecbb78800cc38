/**
 * One row of a sweep: what is measured on one trained SAE (latent 0's encoder and decoder cosine
 * similarity with every true feature, the final losses per Matryoshka prefix), and its JSON form
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

/** What the sweep records for one SAE. */
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

/** Measures a trained SAE: latent 0's cosine similarities and the final losses per prefix. */
export function measureRow(
  identity: RowIdentity,
  sae: MatryoshkaSAE,
  embedding: Float32Array,
  nFeatures: number,
  result: TrainResult,
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

/** A sweep row as written to sweep.json (β = ∞ as the string "inf"). */
export type SweepRowJson = Omit<SweepRow, "beta"> & { beta: number | "inf" };

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

const num = (v: unknown) => typeof v === "number" ? v : NaN;
const numList = (v: unknown) => Array.isArray(v) ? v.map(num) : [];

/**
 * Reads a row from its JSON form (`null` back to NaN).
 *
 * @param where the record the row came from, for error messages.
 */
export function rowFromJson(json: unknown, where: string): SweepRow {
  const j = json as Partial<SweepRowJson> | null;
  if (
    typeof j !== "object" || j === null || typeof j.tree !== "string" ||
    !(typeof j.beta === "number" || j.beta === "inf") || typeof j.seed !== "number" ||
    !Array.isArray(j.encoderCos) || !Array.isArray(j.decoderCos) || typeof j.losses !== "object"
  ) {
    throw new RangeError(
      `Invalid sweep record ${where}: a row lacks tree, beta, seed or cosines; delete the record ` +
        "to retrain its SAEs",
    );
  }
  return {
    tree: j.tree,
    childProbs: numList(j.childProbs),
    beta: j.beta === "inf" ? Infinity : j.beta,
    seed: j.seed,
    round: typeof j.round === "number" ? j.round : 0,
    encoderCos: numList(j.encoderCos),
    decoderCos: numList(j.decoderCos),
    losses: {
      total: num(j.losses?.total),
      gradNorm: num(j.losses?.gradNorm),
      recon: numList(j.losses?.recon),
      l1: numList(j.losses?.l1),
    },
    stepsDone: typeof j.stepsDone === "number" ? j.stepsDone : 0,
    divergedAt: typeof j.divergedAt === "number" ? j.divergedAt : null,
    metrics: Object.fromEntries(
      Object.entries(j.metrics ?? {}).map(([k, v]) => [k, num(v)]),
    ),
  };
}
