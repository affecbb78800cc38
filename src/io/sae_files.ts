/**
 * Save and load a trained SAE in SAELens's folder layout: `cfg.json` and
 * `sae_weights.safetensors` holding `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`,
 * `b_enc [d_sae]` and `b_dec [d_in]` as float32.
 *
 * `cfg.json` has every {@link SaeConfig} field under its published snake_case name
 * (`matryoshka_steps`, `use_delta_loss`, …) plus the keys SAELens 5's `SAEConfig` requires
 * (`architecture: "standard"`, `activation_fn_str: "relu"`, `dtype: "float32"`, `device`,
 * `hook_name`, …, with neutral values for a toy model), so that
 * `sae_lens.SAE.load_from_disk(folder)` loads it in Python (it ignores the extra keys). The
 * folder is written atomically (src/io/output_dir.ts): an existing SAE folder is replaced whole or
 * not at all, and a folder holding any other file is refused, never deleted.
 */
import { writeOutputDir } from "./output_dir.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type F32Tensor,
  tensorToF32,
} from "./safetensors.ts";
import { ConfigError, resolveSaeConfig, type SaeConfig } from "../sae/config.ts";
import { type ParamLayout, paramLayout, paramViews } from "../sae/layout.ts";
import type { TopKState } from "../sae/sae.ts";

/**
 * The config file's name in an SAE folder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SAE_CFG_FILE, saveSae } from "./sae_files.ts";
 * import { DEFAULT_SAE_CONFIG } from "../sae/config.ts";
 * const dir = await Deno.makeTempDir();
 * await saveSae(dir, new Float32Array(17), { ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2 });
 * const cfg = JSON.parse(await Deno.readTextFile(`${dir}/${SAE_CFG_FILE}`));
 * assert.equal(cfg.d_sae, 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export const SAE_CFG_FILE = "cfg.json";
/**
 * The weights file's name in an SAE folder.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SAE_WEIGHTS_FILE, saveSae } from "./sae_files.ts";
 * import { decodeSafetensors } from "./safetensors.ts";
 * import { DEFAULT_SAE_CONFIG } from "../sae/config.ts";
 * const dir = await Deno.makeTempDir();
 * await saveSae(dir, new Float32Array(17), { ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2 });
 * const file = decodeSafetensors(await Deno.readFile(`${dir}/${SAE_WEIGHTS_FILE}`));
 * assert.deepEqual(file.tensors.get("W_enc")!.shape, [3, 2]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export const SAE_WEIGHTS_FILE = "sae_weights.safetensors";

/** Our camelCase config field → the published snake_case key (every field, checked by tsc). */
export const SAE_CONFIG_KEYS: Readonly<{ [K in keyof SaeConfig]-?: string }> = Object.freeze(
  {
    dIn: "d_in",
    dSae: "d_sae",
    l1Coefficient: "l1_coefficient",
    lpNorm: "lp_norm",
    normalizeSaeDecoder: "normalize_sae_decoder",
    scaleSparsityPenaltyByDecoderNorm: "scale_sparsity_penalty_by_decoder_norm",
    initEncoderAsDecoderTranspose: "init_encoder_as_decoder_transpose",
    applyBDecToInput: "apply_b_dec_to_input",
    bDecInitMethod: "b_dec_init_method",
    matryoshkaSteps: "matryoshka_steps",
    matryoshkaInnerLossMultipliers: "matryoshka_inner_loss_multipliers",
    matryoshkaInnerL1LossMultipliers: "matryoshka_inner_l1_loss_multipliers",
    includeMatryoshkaInnerL1Loss: "include_matryoshka_inner_l1_loss",
    outerLossMultiplier: "outer_loss_multiplier",
    skipOuterLoss: "skip_outer_loss",
    useDeltaLoss: "use_delta_loss",
    reconstructionLoss: "reconstruction_loss",
    normalizeLossesByNumMatryoshkaSteps: "normalize_losses_by_num_matryoshka_steps",
    normalizeReconstructionLossesByDIn: "normalize_reconstruction_losses_by_d_in",
    includeBdecLoss: "include_bdec_loss",
    architecture: "training_architecture",
    k: "k",
    auxLossCoefficient: "aux_loss_coefficient",
    kAux: "k_aux",
    deadFeatureWindow: "dead_feature_window",
    topkThresholdLr: "topk_threshold_lr",
  },
);

/**
 * SAELens's inference form of each architecture: `architecture`, `activation_fn_str` and
 * `activation_fn_kwargs` of `cfg.json`. BatchTopK becomes a JumpReLU with its threshold θ for
 * every latent (the `threshold` tensor); TopK is SAELens 5's standard SAE with a TopK activation.
 */
function inferenceForm(config: SaeConfig): Record<string, unknown> {
  switch (config.architecture) {
    case "topk":
      return {
        architecture: "standard",
        activation_fn_str: "topk",
        activation_fn_kwargs: { k: config.k },
      };
    case "batchtopk":
      return { architecture: "jumprelu", activation_fn_str: "relu", activation_fn_kwargs: {} };
    default:
      return { architecture: "standard", activation_fn_str: "relu", activation_fn_kwargs: {} };
  }
}

/** The `cfg.json` key of the dead-latent counters (TopK family). */
const STEPS_SINCE_FIRED_KEY = "steps_since_fired";

/** Keys SAELens's `SAEConfig` requires that have no counterpart in {@link SaeConfig}. */
const SAELENS_FIXED: Readonly<Record<string, unknown>> = Object.freeze({
  dtype: "float32",
  device: "cpu",
  normalize_activations: "none",
  finetuning_scaling_factor: false,
  model_name: "toy_model",
  hook_name: "toy_model.hidden",
  hook_layer: 0,
  hook_head_index: null,
  context_size: 1,
  prepend_bos: false,
  dataset_path: "",
  dataset_trust_remote_code: false,
  sae_lens_training_version: null,
  neuronpedia_id: null,
  model_from_pretrained_kwargs: {},
});

/**
 * Thrown when an SAE folder cannot be loaded; the message names the file, key or tensor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSae, SaeFileError } from "./sae_files.ts";
 * const dir = await Deno.makeTempDir(); // an empty folder: no cfg.json
 * await assert.rejects(loadSae(dir), SaeFileError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SaeFileError extends Error {
  /** The error's name. */
  override name = "SaeFileError";
}

/**
 * What {@link loadSae} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LoadedSae, loadSae, saveSae } from "./sae_files.ts";
 * import { DEFAULT_SAE_CONFIG } from "../sae/config.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * const dir = await Deno.makeTempDir();
 * await saveSae(dir, new Float32Array(17).fill(0.5), { ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2 });
 * const loaded: LoadedSae = await loadSae(dir);
 * const sae = new MatryoshkaSAE(loaded.config, loaded.params);
 * assert.equal(sae.wDec[5], 0.5);
 * assert.equal(loaded.layout.size, 17);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface LoadedSae {
  /** One model's parameter block, in the layout of `src/sae/layout.ts`. */
  params: Float32Array;
  /** The config from `cfg.json` (missing optional keys take the defaults). */
  config: SaeConfig;
  /** The layout of `params`. */
  layout: ParamLayout;
  /** `cfg.json` keys that are neither config fields nor SAELens's fixed keys (e.g. `extra`). */
  extra: Record<string, unknown>;
  /**
   * TopK-family state: the `threshold` tensor's value (BatchTopK) and `steps_since_fired`;
   * zeros for a standard SAE or where the file has none.
   */
  topkState: TopKState;
}

/** The `cfg.json` object for `config` (and `extra` keys, which must not collide). */
export function saeCfgJson(
  config: SaeConfig,
  extra: Record<string, unknown> = {},
  topkState?: TopKState,
): Record<string, unknown> {
  const cfg: Record<string, unknown> = { ...SAELENS_FIXED, ...inferenceForm(config) };
  for (const [field, key] of Object.entries(SAE_CONFIG_KEYS)) {
    cfg[key] = config[field as keyof SaeConfig];
  }
  if (config.architecture !== "standard") {
    cfg[STEPS_SINCE_FIRED_KEY] = [...(topkState?.stepsSinceFired ?? new Uint32Array(config.dSae))];
  }
  for (const [key, value] of Object.entries(extra)) {
    if (key in cfg) {
      throw new RangeError(
        `Invalid extra key "${key}": it would overwrite a cfg.json key; choose another name`,
      );
    }
    cfg[key] = value;
  }
  return cfg;
}

/**
 * Saves one SAE as a SAELens folder (`cfg.json` + `sae_weights.safetensors`), atomically
 * replacing `dir` if it holds an SAE (those two files and nothing else).
 *
 * @throws {OutputError} when `dir` holds other files (nothing is changed) or cannot be written.
 * @param params one model's block (layout of `src/sae/layout.ts` for `config.dIn`, `config.dSae`)
 * @param extra further JSON keys for `cfg.json` (e.g. seed, steps); must not reuse a config key
 * @param topkState a TopK-family SAE's state (zeros if omitted): BatchTopK's θ becomes the
 *   JumpReLU `threshold` tensor `[d_sae]`, the dead-latent counters `steps_since_fired`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSae, saveSae } from "./sae_files.ts";
 * import { DEFAULT_SAE_CONFIG } from "../sae/config.ts";
 * import { paramLayout } from "../sae/layout.ts";
 * const config = { ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2 };
 * const params = new Float32Array(paramLayout(3, 2).size).fill(0.5);
 * const dir = await Deno.makeTempDir();
 * await saveSae(`${dir}/sae`, params, config, { seed: 1 });
 * const loaded = await loadSae(`${dir}/sae`);
 * assert.deepEqual(loaded.params, params);
 * assert.equal(loaded.extra.seed, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveSae(
  dir: string,
  params: Float32Array,
  config: SaeConfig,
  extra: Record<string, unknown> = {},
  topkState?: TopKState,
): Promise<void> {
  const layout = paramLayout(config.dIn, config.dSae);
  if (params.length !== layout.size) {
    throw new RangeError(
      `Invalid params: expected ${layout.size} floats for dIn ${config.dIn}, dSae ${config.dSae}, ` +
        `got ${params.length}`,
    );
  }
  const cfgText = JSON.stringify(saeCfgJson(config, extra, topkState), null, 2) + "\n";
  const v = paramViews(params, layout);
  const tensors: Record<string, F32Tensor> = {
    W_enc: { shape: [config.dIn, config.dSae], data: v.wEnc },
    W_dec: { shape: [config.dSae, config.dIn], data: v.wDec },
    b_enc: { shape: [config.dSae], data: v.bEnc },
    b_dec: { shape: [config.dIn], data: v.bDec },
  };
  if (config.architecture === "batchtopk") {
    const theta = topkState?.threshold ?? 0;
    tensors.threshold = { shape: [config.dSae], data: new Float32Array(config.dSae).fill(theta) };
  }
  const weights = encodeSafetensors(tensors, { format: "pt" });
  await writeOutputDir(
    { path: dir, what: "SAE folder", files: [SAE_CFG_FILE, SAE_WEIGHTS_FILE] },
    async (tmp) => {
      await Deno.writeTextFile(`${tmp}/${SAE_CFG_FILE}`, cfgText);
      await Deno.writeFile(`${tmp}/${SAE_WEIGHTS_FILE}`, weights);
    },
  );
}

/**
 * A TopK-family SAE's state from its files: θ from the `threshold` tensor (every entry equal, as
 * a BatchTopK export writes it), the counters from `steps_since_fired` (zeros where absent).
 */
function loadTopKState(
  cfg: Record<string, unknown>,
  tensors: ReturnType<typeof decodeSafetensors>["tensors"],
  config: SaeConfig,
  cfgPath: string,
  weightsPath: string,
): TopKState {
  const state: TopKState = { threshold: 0, stepsSinceFired: new Uint32Array(config.dSae) };
  if (config.architecture === "standard") return state;
  const steps = cfg[STEPS_SINCE_FIRED_KEY];
  if (steps !== undefined) {
    const ok = Array.isArray(steps) && steps.length === config.dSae &&
      steps.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
    if (!ok) {
      throw new SaeFileError(
        `Invalid ${cfgPath}: "${STEPS_SINCE_FIRED_KEY}" must be a list of d_sae = ` +
          `${config.dSae} integers >= 0, got ${JSON.stringify(steps)}`,
      );
    }
    state.stepsSinceFired.set(steps as number[]);
  }
  if (config.architecture === "batchtopk") {
    const tensor = tensors.get("threshold");
    if (!tensor || tensor.shape.join() !== String(config.dSae)) {
      throw new SaeFileError(
        `Invalid ${weightsPath}: a BatchTopK (JumpReLU) SAE needs tensor "threshold" of shape ` +
          `[${config.dSae}], got ${tensor ? `[${tensor.shape.join(", ")}]` : "none"}`,
      );
    }
    const values = tensorToF32("threshold", tensor);
    if (!values.every((v) => v === values[0] && Number.isFinite(v) && v >= 0)) {
      throw new SaeFileError(
        `Invalid ${weightsPath}: tensor "threshold" must hold one finite value >= 0 for every ` +
          `latent (BatchTopK's θ)`,
      );
    }
    state.threshold = values[0]!;
  }
  return state;
}

/**
 * Reads the config fields from a parsed `cfg.json`: missing optional keys take the defaults, and
 * the result is validated by `resolveSaeConfig` (errors name the camelCase field and the file).
 */
function configFromCfg(cfg: Record<string, unknown>, path: string): SaeConfig {
  const given: Record<string, unknown> = {};
  for (const [field, key] of Object.entries(SAE_CONFIG_KEYS)) {
    if (cfg[key] !== undefined) given[field] = cfg[key];
  }
  for (const key of ["d_in", "d_sae"]) {
    if (cfg[key] === undefined) {
      throw new SaeFileError(`Invalid ${path}: missing required key "${key}"`);
    }
  }
  try {
    return resolveSaeConfig(given as Partial<SaeConfig> & { dIn: number; dSae: number });
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new SaeFileError(`Invalid ${path}: ${error.message}`);
    }
    throw error;
  }
}

/**
 * Loads an SAE folder written by {@link saveSae} (or by SAELens, for a standard float32 SAE).
 *
 * Refuses an invalid config (checked by `resolveSaeConfig`), a missing tensor, a dtype other than
 * F32 or a wrong shape with a {@link SaeFileError} naming the key or tensor, the expected and the
 * actual shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSae, saveSae } from "./sae_files.ts";
 * import { DEFAULT_SAE_CONFIG } from "../sae/config.ts";
 * const dir = await Deno.makeTempDir();
 * const config = { ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2, matryoshkaSteps: [1, 2] };
 * await saveSae(`${dir}/sae`, new Float32Array(17), config, { steps: 100 });
 * const { config: loaded, extra } = await loadSae(`${dir}/sae`);
 * assert.deepEqual(loaded.matryoshkaSteps, [1, 2]);
 * assert.deepEqual(extra, { steps: 100 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadSae(dir: string): Promise<LoadedSae> {
  const cfgPath = `${dir}/${SAE_CFG_FILE}`;
  let cfg: unknown;
  try {
    cfg = JSON.parse(await Deno.readTextFile(cfgPath));
  } catch (error) {
    throw new SaeFileError(
      `Cannot read ${cfgPath}: ${error instanceof Error ? error.message : error}`,
    );
  }
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) {
    throw new SaeFileError(`Invalid ${cfgPath}: expected a JSON object`);
  }
  const cfgObj = cfg as Record<string, unknown>;
  const config = configFromCfg(cfgObj, cfgPath);
  const layout = paramLayout(config.dIn, config.dSae);

  const weightsPath = `${dir}/${SAE_WEIGHTS_FILE}`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(weightsPath);
  } catch (error) {
    throw new SaeFileError(
      `Cannot read ${weightsPath}: ${error instanceof Error ? error.message : error}`,
    );
  }
  let file;
  try {
    file = decodeSafetensors(bytes);
  } catch (error) {
    throw new SaeFileError(
      `Invalid ${weightsPath}: ${error instanceof Error ? error.message : error}`,
    );
  }
  const params = new Float32Array(layout.size);
  const views = paramViews(params, layout);
  const expected: [string, number[], Float32Array][] = [
    ["W_enc", [config.dIn, config.dSae], views.wEnc],
    ["W_dec", [config.dSae, config.dIn], views.wDec],
    ["b_enc", [config.dSae], views.bEnc],
    ["b_dec", [config.dIn], views.bDec],
  ];
  for (const [name, shape, target] of expected) {
    const tensor = file.tensors.get(name);
    if (!tensor) {
      throw new SaeFileError(
        `Invalid ${weightsPath}: missing tensor "${name}" (expected shape [${shape.join(", ")}])`,
      );
    }
    if (tensor.shape.join() !== shape.join()) {
      throw new SaeFileError(
        `Invalid ${weightsPath}: tensor "${name}" has shape [${tensor.shape.join(", ")}], ` +
          `expected [${shape.join(", ")}] (d_in ${config.dIn}, d_sae ${config.dSae})`,
      );
    }
    try {
      target.set(tensorToF32(name, tensor));
    } catch (error) {
      throw new SaeFileError(
        `Invalid ${weightsPath}: ${error instanceof Error ? error.message : error}`,
      );
    }
  }

  const topkState = loadTopKState(cfgObj, file.tensors, config, cfgPath, weightsPath);
  const known = new Set<string>([
    ...Object.keys(SAELENS_FIXED),
    ...Object.keys(inferenceForm(config)),
    ...Object.values(SAE_CONFIG_KEYS),
    STEPS_SINCE_FIRED_KEY,
  ]);
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(cfgObj)) {
    if (!known.has(key)) extra[key] = value;
  }
  return { params, config, layout, extra, topkState };
}
