/**
 * The Matryoshka SAE configuration: every switch of the published `MatryoshkaSAERunnerConfig`
 * (camelCase), its published defaults, and validation at the boundary.
 *
 * {@link resolveSaeConfig} (defaults merged, then {@link validateSaeConfig}) runs before any GPU
 * work and throws a {@link ConfigError} naming the field, what is allowed and what was given.
 * Unlike the published code, which sorts and de-duplicates `matryoshka_steps` silently, unsorted or
 * repeated steps are refused.
 */

/**
 * How `b_dec` is initialised.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BDecInitMethod, ConfigError, resolveSaeConfig } from "./config.ts";
 * const bDecInitMethod: BDecInitMethod = "mean";
 * assert.equal(resolveSaeConfig({ dIn: 2, dSae: 1, bDecInitMethod }).bDecInitMethod, "mean");
 * const typo = "median" as BDecInitMethod;
 * assert.throws(() => resolveSaeConfig({ dIn: 2, dSae: 1, bDecInitMethod: typo }), ConfigError);
 * ```
 */
export type BDecInitMethod = "zeros" | "mean" | "geometric_median";
/**
 * The outer (full-width) reconstruction loss.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReconstructionLoss } from "./config.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const reconstructionLoss: ReconstructionLoss = "L2";
 * const sae = new MatryoshkaSAE({ dIn: 4, dSae: 2, reconstructionLoss });
 * const outer = sae.lossPlan().terms.find((t) => t.kind === "outer");
 * assert.equal(outer?.reconKind, "l2"); // prefix terms stay MSE
 * ```
 */
export type ReconstructionLoss = "MSE" | "L2";

/**
 * How latents are chosen to fire. `standard`: ReLU with a sparsity penalty (the notebook's);
 * `topk`: each row keeps its `k` largest ReLU activations; `batchtopk`: the batch keeps its
 * `k × batch` largest (ties: the lower flat index `row · dSae + latent` wins), and a running
 * threshold makes it a JumpReLU at inference. TopK and BatchTopK have no sparsity penalty
 * (`l1Coefficient` is ignored) and an auxiliary loss for dead latents.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Architecture } from "./config.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const architecture: Architecture = "batchtopk";
 * const sae = new MatryoshkaSAE({ dIn: 4, dSae: 4, architecture, k: 2, matryoshkaSteps: [1, 4] });
 * assert.ok(sae.lossPlan().terms.every((t) => t.l1Mult === 0)); // no sparsity penalty
 * ```
 */
export type Architecture = "standard" | "topk" | "batchtopk";

/**
 * Every switch of a Matryoshka SAE. Defaults: {@link DEFAULT_SAE_CONFIG}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_SAE_CONFIG, type SaeConfig, validateSaeConfig } from "./config.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const config: SaeConfig = { ...DEFAULT_SAE_CONFIG, dIn: 8, dSae: 16, matryoshkaSteps: [4, 16] };
 * validateSaeConfig(config);
 * assert.equal(new MatryoshkaSAE(config).lossPlan().terms.length, 3); // 2 prefixes + outer
 * ```
 */
export interface SaeConfig {
  /** Input width (the toy model's hidden dimension). */
  dIn: number;
  /** Number of latents. */
  dSae: number;
  /** λ, the sparsity penalty coefficient. */
  l1Coefficient: number;
  /** p of the sparsity penalty's per-row p-norm (1 = L1). */
  lpNorm: number;
  /** Keep decoder rows at unit norm (and remove the gradient parallel to them). */
  normalizeSaeDecoder: boolean;
  /** Weight each latent's activation by its decoder row norm in the sparsity penalty. */
  scaleSparsityPenaltyByDecoderNorm: boolean;
  /** Initialise `W_enc` as `W_dec`ᵀ in the random initialisation. */
  initEncoderAsDecoderTranspose: boolean;
  /** Subtract `b_dec` from the input before encoding. */
  applyBDecToInput: boolean;
  /** How `b_dec` is initialised. */
  bDecInitMethod: BDecInitMethod;
  /** Prefix ends, sorted and unique, each in [1, dSae]. Empty means `[dSae]`. */
  matryoshkaSteps: number[];
  /** β_i per prefix (same length as the steps); a number applies to all. */
  matryoshkaInnerLossMultipliers: number[] | number;
  /** γ_i per prefix (same length as the steps); a number applies to all. */
  matryoshkaInnerL1LossMultipliers: number[] | number;
  /** Add the sparsity penalty to each prefix's loss. */
  includeMatryoshkaInnerL1Loss: boolean;
  /** Multiplier of the full-width loss. */
  outerLossMultiplier: number;
  /** Leave out the full-width loss. */
  skipOuterLoss: boolean;
  /** Detach earlier prefixes' reconstruction in each prefix's loss (β = ∞ when multipliers are 1). */
  useDeltaLoss: boolean;
  /** The outer loss: `MSE` (squared error summed over d_in) or `L2` (per-row Euclidean norm). */
  reconstructionLoss: ReconstructionLoss;
  /** Divide every loss by the number of loss terms. */
  normalizeLossesByNumMatryoshkaSteps: boolean;
  /** Divide reconstruction losses by d_in. */
  normalizeReconstructionLossesByDIn: boolean;
  /** Add `MSE(b_dec − x)`. */
  includeBdecLoss: boolean;
  /** `standard` (ReLU + sparsity penalty), `topk` or `batchtopk` ({@link Architecture}). */
  architecture: Architecture;
  /**
   * TopK: latents kept per row, an integer; BatchTopK: kept on average per row, any number in
   * (0, dSae] (⌊k · batch⌋ kept over the batch, as SAELens).
   */
  k: number;
  /** TopK / BatchTopK: coefficient of the dead-latent auxiliary loss (0: none). */
  auxLossCoefficient: number;
  /** TopK / BatchTopK: dead latents the auxiliary loss uses per row; null: ⌊dIn / 2⌋. */
  kAux: number | null;
  /** TopK / BatchTopK: a latent is dead after more than this many steps without firing. */
  deadFeatureWindow: number;
  /** BatchTopK: θ ← (1 − lr)·θ + lr·(smallest positive kept activation) after every step. */
  topkThresholdLr: number;
}

/**
 * The published defaults (SAELens 5 + `hedging_paper`), with the notebook's shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_SAE_CONFIG, resolveSaeConfig } from "./config.ts";
 * assert.equal(DEFAULT_SAE_CONFIG.bDecInitMethod, "geometric_median");
 * assert.ok(Object.isFrozen(DEFAULT_SAE_CONFIG));
 * assert.deepEqual(resolveSaeConfig({ dIn: 50, dSae: 4 }), DEFAULT_SAE_CONFIG);
 * ```
 */
export const DEFAULT_SAE_CONFIG: Readonly<SaeConfig> = Object.freeze({
  dIn: 50,
  dSae: 4,
  l1Coefficient: 1e-3,
  lpNorm: 1,
  normalizeSaeDecoder: false,
  scaleSparsityPenaltyByDecoderNorm: false,
  initEncoderAsDecoderTranspose: false,
  applyBDecToInput: true,
  bDecInitMethod: "geometric_median" as BDecInitMethod,
  matryoshkaSteps: [] as number[],
  matryoshkaInnerLossMultipliers: 1,
  matryoshkaInnerL1LossMultipliers: 1,
  includeMatryoshkaInnerL1Loss: true,
  outerLossMultiplier: 1,
  skipOuterLoss: false,
  useDeltaLoss: false,
  reconstructionLoss: "MSE" as ReconstructionLoss,
  normalizeLossesByNumMatryoshkaSteps: false,
  normalizeReconstructionLossesByDIn: false,
  includeBdecLoss: false,
  architecture: "standard" as Architecture,
  k: 1,
  auxLossCoefficient: 1 / 32,
  kAux: null,
  deadFeatureWindow: 1000,
  topkThresholdLr: 0.01,
});

/**
 * Thrown for an invalid configuration; the message names the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, resolveSaeConfig } from "./config.ts";
 * assert.throws(() => resolveSaeConfig({ dIn: 0, dSae: 4 }), {
 *   name: "ConfigError",
 *   message: "Invalid SAE config: dIn must be a positive integer, got 0",
 * });
 * assert.equal(new ConfigError("bad").exitCode, 2);
 * ```
 */
export class ConfigError extends Error {
  /** Always `"ConfigError"`. */
  override name = "ConfigError";
  /** Exit status of a command that stops on this error. */
  readonly exitCode = 2;
}

/**
 * The notebook's shared configuration (`balancing_hedging_and_absorption`): d_in 50, d_sae 4,
 * λ = 3e-2, decoder-norm-weighted L1 without decoder normalisation, encoder initialised as the
 * decoder's transpose, `b_dec` applied to the input and initialised to zeros, prefixes `[1, 4]`,
 * no outer loss. Each of the notebook's SAEs overrides some of it (`useDeltaLoss`, `matryoshkaSteps`,
 * `matryoshkaInnerLossMultipliers`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NOTEBOOK_SAE_CONFIG } from "./config.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const betas = [0.25, 1];
 * const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, matryoshkaInnerLossMultipliers: betas });
 * const terms = sae.lossPlan().terms.map((t) => [t.kind, t.end, t.reconMult]);
 * assert.deepEqual(terms, [["prefix", 1, 0.25], ["prefix", 4, 1]]); // no outer term
 * ```
 */
export const NOTEBOOK_SAE_CONFIG: Readonly<SaeConfig> = Object.freeze({
  ...DEFAULT_SAE_CONFIG,
  dIn: 50,
  dSae: 4,
  l1Coefficient: 3e-2,
  normalizeSaeDecoder: false,
  scaleSparsityPenaltyByDecoderNorm: true,
  initEncoderAsDecoderTranspose: true,
  applyBDecToInput: true,
  bDecInitMethod: "zeros" as BDecInitMethod,
  matryoshkaSteps: Object.freeze([1, 4]) as number[],
  skipOuterLoss: true,
});

const FIELDS = Object.keys(DEFAULT_SAE_CONFIG) as (keyof SaeConfig)[];
const BOOLEAN_FIELDS = [
  "normalizeSaeDecoder",
  "scaleSparsityPenaltyByDecoderNorm",
  "initEncoderAsDecoderTranspose",
  "applyBDecToInput",
  "includeMatryoshkaInnerL1Loss",
  "skipOuterLoss",
  "useDeltaLoss",
  "normalizeLossesByNumMatryoshkaSteps",
  "normalizeReconstructionLossesByDIn",
  "includeBdecLoss",
] as const satisfies readonly (keyof SaeConfig)[];
const B_DEC_INIT_METHODS: readonly BDecInitMethod[] = ["zeros", "mean", "geometric_median"];
const RECONSTRUCTION_LOSSES: readonly ReconstructionLoss[] = ["MSE", "L2"];
/**
 * The architectures, in the order help texts list them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ARCHITECTURES } from "./config.ts";
 * assert.deepEqual(ARCHITECTURES, ["standard", "topk", "batchtopk"]);
 * ```
 */
export const ARCHITECTURES: readonly Architecture[] = Object.freeze([
  "standard",
  "topk",
  "batchtopk",
]);

/** Formats a given value for an error message: lists as `[a, b]`, strings quoted. */
function show(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") return String(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object") {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return `${String(value)} (${typeof value})`;
}

function fail(field: string, allowed: string, given: unknown): never {
  throw new ConfigError(`Invalid SAE config: ${field} must be ${allowed}, got ${show(given)}`);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function checkKnownFields(input: object): void {
  for (const key of Object.keys(input)) {
    if (!(FIELDS as string[]).includes(key)) {
      throw new ConfigError(
        `Invalid SAE config: unknown field ${JSON.stringify(key)}; the fields are ${
          FIELDS.join(", ")
        }`,
      );
    }
  }
}

function checkPositiveInteger(field: string, value: unknown): void {
  if (!isFiniteNumber(value) || !Number.isInteger(value) || value <= 0) {
    fail(field, "a positive integer", value);
  }
}

function checkNonNegative(field: string, value: unknown): void {
  if (!isFiniteNumber(value) || value < 0) fail(field, "a finite number >= 0", value);
}

/** β_i / γ_i: a finite number >= 0, or a list of them with one entry per Matryoshka step. */
function checkMultipliers(field: string, value: unknown, nSteps: number): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      if (!isFiniteNumber(v) || v < 0) fail(`${field}[${i}]`, "a finite number >= 0", v);
    });
    if (value.length !== nSteps) {
      fail(
        field,
        `a number or a list with one entry per Matryoshka step (${nSteps})`,
        value,
      );
    }
    return;
  }
  if (!isFiniteNumber(value) || value < 0) {
    fail(field, "a finite number >= 0 or a list of them", value);
  }
}

/**
 * Checks a complete configuration; throws a {@link ConfigError} naming the first bad field, what
 * is allowed and what was given. Refuses: unknown or missing fields; `dIn`/`dSae` that are not
 * positive integers; `matryoshkaSteps` unsorted, repeated, or outside integers [1, dSae];
 * multiplier lists whose length differs from the number of steps; negative coefficients or
 * multipliers; `lpNorm <= 0`; NaN or ±Infinity; bad enum values; non-boolean switches; decoder
 * normalisation together with decoder-norm-weighted sparsity (as SAELens refuses it); and a
 * configuration with no loss term at all.
 *
 * @example
 * ```ts
 * import { DEFAULT_SAE_CONFIG, validateSaeConfig } from "./config.ts";
 * validateSaeConfig({ ...DEFAULT_SAE_CONFIG, dIn: 8, dSae: 16 });
 * ```
 */
export function validateSaeConfig(config: SaeConfig): void {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`Invalid SAE config: expected an object, got ${show(config)}`);
  }
  checkKnownFields(config);
  for (const key of FIELDS) {
    if (config[key] === undefined) fail(key, "given", undefined);
  }
  checkPositiveInteger("dIn", config.dIn);
  checkPositiveInteger("dSae", config.dSae);
  checkNonNegative("l1Coefficient", config.l1Coefficient);
  if (!isFiniteNumber(config.lpNorm) || config.lpNorm <= 0) {
    fail("lpNorm", "a finite number > 0", config.lpNorm);
  }
  checkNonNegative("outerLossMultiplier", config.outerLossMultiplier);
  for (const key of BOOLEAN_FIELDS) {
    if (typeof config[key] !== "boolean") fail(key, "true or false", config[key]);
  }
  if (!B_DEC_INIT_METHODS.includes(config.bDecInitMethod)) {
    fail("bDecInitMethod", `one of ${B_DEC_INIT_METHODS.join(", ")}`, config.bDecInitMethod);
  }
  if (!RECONSTRUCTION_LOSSES.includes(config.reconstructionLoss)) {
    fail(
      "reconstructionLoss",
      `one of ${RECONSTRUCTION_LOSSES.join(", ")}`,
      config.reconstructionLoss,
    );
  }
  if (!ARCHITECTURES.includes(config.architecture)) {
    fail("architecture", `one of ${ARCHITECTURES.join(", ")}`, config.architecture);
  }
  if (config.architecture === "batchtopk") {
    // SAELens's BatchTopK takes a fractional k: ⌊k · batch⌋ activations are kept per batch.
    if (!isFiniteNumber(config.k) || config.k <= 0 || config.k > config.dSae) {
      fail("k", `a number in (0, dSae = ${config.dSae}] for batchtopk`, config.k);
    }
  } else if (
    !isFiniteNumber(config.k) || !Number.isInteger(config.k) || config.k < 1 ||
    config.k > config.dSae
  ) {
    fail("k", `an integer in [1, dSae = ${config.dSae}]`, config.k);
  }
  checkNonNegative("auxLossCoefficient", config.auxLossCoefficient);
  if (config.kAux !== null) checkPositiveInteger("kAux", config.kAux);
  checkPositiveInteger("deadFeatureWindow", config.deadFeatureWindow);
  if (
    !isFiniteNumber(config.topkThresholdLr) || config.topkThresholdLr <= 0 ||
    config.topkThresholdLr > 1
  ) {
    fail("topkThresholdLr", "a number in (0, 1]", config.topkThresholdLr);
  }
  const steps: unknown = config.matryoshkaSteps;
  if (!Array.isArray(steps)) fail("matryoshkaSteps", "a list of integers", steps);
  steps.forEach((step, i) => {
    if (!isFiniteNumber(step) || !Number.isInteger(step) || step < 1 || step > config.dSae) {
      fail(`matryoshkaSteps[${i}]`, `an integer in [1, dSae = ${config.dSae}]`, step);
    }
  });
  for (let i = 1; i < steps.length; i++) {
    if (steps[i] === steps[i - 1]) {
      fail("matryoshkaSteps", "sorted ascending without repeats", steps);
    }
    if (steps[i] < steps[i - 1]) fail("matryoshkaSteps", "sorted ascending", steps);
  }
  const nSteps = Math.max(steps.length, 1);
  checkMultipliers("matryoshkaInnerLossMultipliers", config.matryoshkaInnerLossMultipliers, nSteps);
  checkMultipliers(
    "matryoshkaInnerL1LossMultipliers",
    config.matryoshkaInnerL1LossMultipliers,
    nSteps,
  );
  if (config.normalizeSaeDecoder && config.scaleSparsityPenaltyByDecoderNorm) {
    throw new ConfigError(
      "Invalid SAE config: scaleSparsityPenaltyByDecoderNorm must be false when " +
        "normalizeSaeDecoder is true (decoder norms are then all 1), got true",
    );
  }
  const betas = Array.isArray(config.matryoshkaInnerLossMultipliers)
    ? config.matryoshkaInnerLossMultipliers
    : [config.matryoshkaInnerLossMultipliers];
  const hasPrefixTerm = betas.some((beta) => beta > 0);
  if (!hasPrefixTerm && config.skipOuterLoss && !config.includeBdecLoss) {
    throw new ConfigError(
      "Invalid SAE config: the loss has no term: matryoshkaInnerLossMultipliers must have an " +
        `entry > 0 when skipOuterLoss is true and includeBdecLoss is false, got ${
          show(config.matryoshkaInnerLossMultipliers)
        }`,
    );
  }
}

/**
 * Merges `input` over {@link DEFAULT_SAE_CONFIG} (lists copied) and validates the result with
 * {@link validateSaeConfig}; throws a {@link ConfigError} before any GPU work.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveSaeConfig } from "./config.ts";
 * const config = resolveSaeConfig({ dIn: 50, dSae: 4, matryoshkaSteps: [1, 4] });
 * assert.equal(config.l1Coefficient, 1e-3);
 * ```
 */
export function resolveSaeConfig(
  input: Partial<SaeConfig> & { dIn: number; dSae: number },
): SaeConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ConfigError(`Invalid SAE config: expected an object, got ${show(input)}`);
  }
  checkKnownFields(input);
  if (input.dIn === undefined) fail("dIn", "a positive integer", undefined);
  if (input.dSae === undefined) fail("dSae", "a positive integer", undefined);
  const given = input as Record<string, unknown>;
  const merged: Record<string, unknown> = {};
  for (const key of FIELDS) {
    const value = given[key] !== undefined ? given[key] : DEFAULT_SAE_CONFIG[key];
    merged[key] = Array.isArray(value) ? [...value] : value;
  }
  const config = merged as unknown as SaeConfig;
  validateSaeConfig(config);
  return config;
}
