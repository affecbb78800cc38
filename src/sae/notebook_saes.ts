/**
 * The notebook's four SAEs (`balancing_hedging_and_absorption`): detached (β = ∞), standard
 * (β = 0) and balanced (β = 0.25) on the balanced tree, and β = 0.17 on the unbalanced tree, each
 * as what it changes of `NOTEBOOK_SAE_CONFIG`.
 */
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "./config.ts";

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
 * The SAE configuration of a sweep point (and of the browser page's β slider): the notebook's,
 * sized for `nFeatures` true features, prefixes `[1, nFeatures]`, with inner multiplier β as
 * `[β, 1]` (β = 0: the standard SAE; Infinity: the detached setup, `useDeltaLoss` with
 * multipliers 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { betaSaeConfig } from "./notebook_saes.ts";
 * assert.deepEqual(betaSaeConfig(0.25, 4).matryoshkaInnerLossMultipliers, [0.25, 1]);
 * assert.equal(betaSaeConfig(Infinity, 4).useDeltaLoss, true);
 * ```
 */
export function betaSaeConfig(
  beta: number,
  nFeatures: number,
): Partial<SaeConfig> & { dIn: number; dSae: number } {
  const base = {
    ...NOTEBOOK_SAE_CONFIG,
    dIn: SWEEP_HIDDEN_DIM,
    dSae: nFeatures,
    matryoshkaSteps: [1, nFeatures],
  };
  if (beta === Infinity) {
    return { ...base, useDeltaLoss: true, matryoshkaInnerLossMultipliers: [1, 1] };
  }
  return { ...base, matryoshkaInnerLossMultipliers: [beta, 1] };
}
