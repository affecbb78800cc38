/**
 * Mean correlation coefficient (MCC) between true features and SAE latents: the mean cosine
 * similarity over an optimal one-to-one matching of features to latents.
 *
 * The matching maximises the total (signed) cosine similarity, found with the Jonker–Volgenant
 * algorithm of npm `linear-sum-assignment`. Convention for rectangular inputs (`dSae ≠ nFeatures`):
 * exactly `min(dSae, nFeatures)` pairs are matched and the MCC is the mean over those pairs; with
 * fewer latents than features, the unmatched features do not count (they are not scored as 0).
 */
import { linearSumAssignment } from "../deps.ts";

/**
 * Result of {@link mcc}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mcc, type MccResult } from "./matching.ts";
 * const result: MccResult = mcc([[0.2, 0.8]]); // 1 latent, 2 features: one pair is matched
 * assert.deepEqual(result.assignment, [-1, 0]); // feature 0 is left unmatched
 * assert.equal(result.mcc, 0.8);
 * ```
 */
export interface MccResult {
  /** Mean cosine similarity over the matched (feature, latent) pairs. */
  mcc: number;
  /** `assignment[feature]` = the matched latent, or −1 for a feature left unmatched. */
  assignment: number[];
}

/**
 * The MCC of a `[latent][feature]` cosine-similarity matrix (see the module comment for the
 * rectangular convention).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mcc } from "./matching.ts";
 * const result = mcc([[0.1, 0.9], [0.8, 0.2]]); // latent 1 ↔ feature 0, latent 0 ↔ feature 1
 * assert.ok(Math.abs(result.mcc - 0.85) < 1e-12);
 * assert.deepEqual(result.assignment, [1, 0]);
 * ```
 */
export function mcc(cosSims: number[][]): MccResult {
  const nLatents = cosSims.length;
  if (nLatents === 0) throw new RangeError("Invalid cosSims: expected at least one latent row");
  const nFeatures = cosSims[0]!.length;
  if (nFeatures === 0) throw new RangeError("Invalid cosSims: expected at least one feature");
  cosSims.forEach((row, l) => {
    if (row.length !== nFeatures) {
      throw new RangeError(
        `Invalid cosSims: every latent row must have ${nFeatures} values, row ${l} has ${row.length}`,
      );
    }
    row.forEach((v, f) => {
      if (!Number.isFinite(v)) {
        throw new RangeError(
          `Invalid cosSims: [latent ${l}][feature ${f}] is ${v}, expected a finite number`,
        );
      }
    });
  });

  const { columnAssignments } = linearSumAssignment(cosSims, { maximaze: true });
  const assignment = Array.from(columnAssignments, (l) => Number(l));
  // Check that the library returned a matching of min(nLatents, nFeatures) distinct pairs.
  const used = new Set<number>();
  let total = 0;
  for (let f = 0; f < nFeatures; f++) {
    const l = assignment[f]!;
    if (l === -1) continue;
    if (!Number.isInteger(l) || l < 0 || l >= nLatents || used.has(l)) {
      throw new Error(`Internal error: invalid assignment of feature ${f} to latent ${l}`);
    }
    used.add(l);
    total += cosSims[l]![f]!;
  }
  const pairs = Math.min(nLatents, nFeatures);
  if (used.size !== pairs) {
    throw new Error(`Internal error: matched ${used.size} pairs, expected ${pairs}`);
  }
  return { mcc: total / pairs, assignment };
}
