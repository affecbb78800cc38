/**
 * `MatryoshkaSAE`: a validated configuration plus its parameters as one flat float32 block in the
 * layout of src/sae/layout.ts (what the GPU trains and what is saved), with named tensor views.
 */
import { resolveSaeConfig, type SaeConfig } from "./config.ts";
import { type ParamLayout, paramLayout, paramViews } from "./layout.ts";
import { type LossPlan, lossPlan } from "./loss_plan.ts";

/**
 * What a TopK-family SAE keeps between steps besides its parameters (state, not trained):
 * BatchTopK's running threshold θ (its JumpReLU threshold at inference) and, per latent, the
 * steps since it last fired (a latent is dead past `deadFeatureWindow`). Zero for a new SAE;
 * saved and loaded with it; ignored by standard SAEs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MatryoshkaSAE, type TopKState } from "./sae.ts";
 * const sae = new MatryoshkaSAE({ dIn: 3, dSae: 2, architecture: "batchtopk" });
 * const state: TopKState = sae.topkState;
 * assert.equal(state.threshold, 0);
 * assert.deepEqual([...state.stepsSinceFired], [0, 0]);
 * ```
 */
export interface TopKState {
  /** BatchTopK's threshold θ. */
  threshold: number;
  /** `[dSae]`: steps since each latent last fired. */
  stepsSinceFired: Uint32Array;
}

/**
 * A Matryoshka SAE's configuration and parameters (zero until initialised or trained).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ConfigError } from "./config.ts";
 * const sae = new MatryoshkaSAE({ dIn: 3, dSae: 2, matryoshkaSteps: [1, 2] });
 * assert.equal(sae.params.length, 3 * 2 + 2 + 2 * 3 + 3); // W_enc, b_enc, W_dec, b_dec
 * sae.wDec.fill(1); // the tensor getters are views into params
 * assert.equal(sae.params[sae.layout.wDec], 1);
 * assert.throws(() => new MatryoshkaSAE({ dIn: 3, dSae: 2, matryoshkaSteps: [3] }), ConfigError);
 * ```
 */
export class MatryoshkaSAE {
  /** The validated configuration (defaults filled in). */
  readonly config: SaeConfig;
  /** Where each tensor lives in {@link params}. */
  readonly layout: ParamLayout;
  /** `W_enc [dIn][dSae]`, `b_enc [dSae]`, `W_dec [dSae][dIn]`, `b_dec [dIn]`, back to back. */
  readonly params: Float32Array;
  /** TopK / BatchTopK state (threshold, dead-latent counters); updated by training. */
  topkState: TopKState;

  /**
   * Builds an SAE from a configuration, with given parameters or all zeros.
   *
   * @param config every field of {@link SaeConfig} may be given; `dIn` and `dSae` are required.
   * @param params the flat parameter block to adopt (not copied; length `layout.size`); zeros if
   *   omitted.
   * @throws {ConfigError} naming the field when the configuration is invalid.
   */
  constructor(config: Partial<SaeConfig> & { dIn: number; dSae: number }, params?: Float32Array) {
    this.config = resolveSaeConfig(config);
    this.layout = paramLayout(this.config.dIn, this.config.dSae);
    if (params && params.length !== this.layout.size) {
      throw new RangeError(
        `MatryoshkaSAE: params has ${params.length} values, expected ${this.layout.size}`,
      );
    }
    this.params = params ?? new Float32Array(this.layout.size);
    this.topkState = { threshold: 0, stepsSinceFired: new Uint32Array(this.config.dSae) };
  }

  /** `W_enc [dIn][dSae]` (a view into {@link params}). */
  get wEnc(): Float32Array {
    return paramViews(this.params, this.layout).wEnc;
  }
  /** `b_enc [dSae]`. */
  get bEnc(): Float32Array {
    return paramViews(this.params, this.layout).bEnc;
  }
  /** `W_dec [dSae][dIn]`. */
  get wDec(): Float32Array {
    return paramViews(this.params, this.layout).wDec;
  }
  /** `b_dec [dIn]`. */
  get bDec(): Float32Array {
    return paramViews(this.params, this.layout).bDec;
  }

  /**
   * How the SAE encodes at inference (evaluation, metrics): latent j is active when its
   * pre-activation is above `threshold` (0: ReLU; BatchTopK: its JumpReLU threshold θ), and then
   * only each row's `k` largest are kept (TopK; ties: the lower latent), or all (`k` null).
   */
  inferenceGate(): { threshold: number; k: number | null } {
    const { architecture, k } = this.config;
    if (architecture === "batchtopk") return { threshold: this.topkState.threshold, k: null };
    return { threshold: 0, k: architecture === "topk" ? k : null };
  }

  /** The loss terms this configuration trains (src/sae/loss_plan.ts). */
  lossPlan(): LossPlan {
    return lossPlan(this.config);
  }
}
