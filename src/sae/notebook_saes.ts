/**
 * The notebook's four SAEs (`balancing_hedging_and_absorption`): detached (β = ∞), standard
 * (β = 0) and balanced (β = 0.25) on the balanced tree, and β = 0.17 on the unbalanced tree, each
 * as what it changes of `NOTEBOOK_SAE_CONFIG`.
 */
import { type Architecture, NOTEBOOK_SAE_CONFIG, type SaeConfig } from "./config.ts";

/**
 * One of the notebook's SAEs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NOTEBOOK_SAE_CONFIG } from "./config.ts";
 * import { type NotebookSae, NOTEBOOK_SAES } from "./notebook_saes.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const spec: NotebookSae = NOTEBOOK_SAES.find((s) => s.name === "unbalanceable")!;
 * assert.equal(spec.tree, "unbalanced");
 * const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...spec.config });
 * assert.deepEqual(sae.config.matryoshkaInnerLossMultipliers, [spec.beta, 1]);
 * ```
 */
export interface NotebookSae {
  /** Its name in output folders and tables. */
  name: "detached" | "standard" | "balanced" | "unbalanceable";
  /** The notebook's plot title. */
  title: string;
  /** β of the inner prefix; null for ∞ (the detached setup). */
  beta: number | null;
  /** Figure file name (without extension), as in the notebook. */
  figure: string;
  /** Which of the notebook's trees it trains on (src/toy/notebook_trees.ts). */
  tree: "balanced" | "unbalanced";
  /** What it changes of `NOTEBOOK_SAE_CONFIG`. */
  config: Partial<SaeConfig>;
}

/**
 * The four SAEs of the notebook, in its order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NOTEBOOK_SAE_CONFIG } from "./config.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { NOTEBOOK_SAES } from "./notebook_saes.ts";
 * const saes = NOTEBOOK_SAES.map((spec) =>
 *   new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...spec.config })
 * );
 * assert.equal(saes.length, 4);
 * ```
 */
export const NOTEBOOK_SAES: readonly NotebookSae[] = [
  {
    name: "detached",
    title: "Detached Matryoshka SAE (β = ∞)",
    beta: null,
    figure: "toy_sae_mat_detached",
    tree: "balanced",
    config: { useDeltaLoss: true },
  },
  {
    name: "standard",
    title: "Standard SAE (β = 0)",
    beta: 0,
    figure: "toy_sae_abs",
    tree: "balanced",
    config: { matryoshkaSteps: [4] },
  },
  {
    name: "balanced",
    title: "Balanced Matryoshka SAE (β = 0.25)",
    beta: 0.25,
    figure: "toy_mat_balanced",
    tree: "balanced",
    config: { matryoshkaInnerLossMultipliers: [0.25, 1.0] },
  },
  {
    name: "unbalanceable",
    title: "Unbalanceable Matryoshka SAE (β = 0.17)",
    beta: 0.17,
    figure: "toy_mat_unbalanceable",
    tree: "unbalanced",
    config: { matryoshkaInnerLossMultipliers: [0.17, 1.0] },
  },
];

/**
 * Hidden dimension of the sweep's (and the browser page's) toy models: the notebook's 50.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { betaSaeConfig, SWEEP_HIDDEN_DIM } from "./notebook_saes.ts";
 * assert.equal(betaSaeConfig(0.25, 4).dIn, SWEEP_HIDDEN_DIM);
 * ```
 */
export const SWEEP_HIDDEN_DIM = 50;

/**
 * How β weights the inner Matryoshka prefixes of a sweep point: `uniform` gives every inner prefix
 * β (the notebook's form), `power` gives inner prefix i of n (from 1) the weight βⁿ⁻ⁱ, the form the
 * paper used for its LLM SAEs. The outer prefix is always 1; with two prefixes the forms agree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BetaForm, prefixMultipliers } from "./notebook_saes.ts";
 * const form: BetaForm = "power";
 * assert.deepEqual(prefixMultipliers(0.5, 4, form), [0.125, 0.25, 0.5, 1]);
 * assert.deepEqual(prefixMultipliers(0.5, 4, "uniform"), [0.5, 0.5, 0.5, 1]);
 * ```
 */
export type BetaForm = "uniform" | "power";

/** The forms of {@link BetaForm}, in the order help texts list them. */
export const BETA_FORMS: readonly BetaForm[] = Object.freeze(["uniform", "power"]);

/**
 * The per-prefix loss multipliers of inner multiplier β over `nPrefixes` prefixes in `form` (the
 * last, outer one 1; β = ∞, the detached setup, gives all 1).
 */
export function prefixMultipliers(beta: number, nPrefixes: number, form: BetaForm): number[] {
  return Array.from({ length: nPrefixes }, (_, i) => {
    if (i === nPrefixes - 1 || beta === Infinity) return 1;
    return form === "power" ? beta ** (nPrefixes - 1 - i) : beta;
  });
}

/**
 * The SAE configuration of a sweep point (and of the browser page's β slider): the notebook's,
 * sized for `nFeatures` true features, prefixes `[1, nFeatures]` unless given, inner multipliers
 * from β in the given form ({@link prefixMultipliers}; β = 0: the standard SAE; Infinity: the
 * detached setup, `useDeltaLoss` with multipliers 1), the L1 coefficient when given, and the
 * architecture with its k (default `standard`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { betaSaeConfig } from "./notebook_saes.ts";
 * assert.deepEqual(betaSaeConfig(0.25, 4).matryoshkaInnerLossMultipliers, [0.25, 1]);
 * assert.equal(betaSaeConfig(Infinity, 4).useDeltaLoss, true);
 * const deep = betaSaeConfig(0.5, 13, { prefixEnds: [1, 4, 13], form: "power", l1: 0.01 });
 * assert.deepEqual(deep.matryoshkaInnerLossMultipliers, [0.25, 0.5, 1]);
 * assert.deepEqual([deep.matryoshkaSteps, deep.l1Coefficient], [[1, 4, 13], 0.01]);
 * ```
 */
export function betaSaeConfig(
  beta: number,
  nFeatures: number,
  { prefixEnds = [1, nFeatures], form = "uniform", l1, architecture = "standard", k = 1 }: {
    prefixEnds?: readonly number[];
    form?: BetaForm;
    l1?: number;
    architecture?: Architecture;
    k?: number;
  } = {},
): Partial<SaeConfig> & { dIn: number; dSae: number } {
  const base = {
    ...NOTEBOOK_SAE_CONFIG,
    dIn: SWEEP_HIDDEN_DIM,
    dSae: nFeatures,
    matryoshkaSteps: [...prefixEnds],
    ...(l1 === undefined ? {} : { l1Coefficient: l1 }),
    matryoshkaInnerLossMultipliers: prefixMultipliers(beta, prefixEnds.length, form),
    ...(architecture === "standard" ? {} : { architecture, k }),
  };
  return beta === Infinity ? { ...base, useDeltaLoss: true } : base;
}
