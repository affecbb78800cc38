/**
 * `resolveSaeConfig`: defaults merge, and every bad configuration is refused with a ConfigError
 * whose message names the field, what is allowed, and what was given.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  DEFAULT_SAE_CONFIG,
  NOTEBOOK_SAE_CONFIG,
  resolveSaeConfig,
  type SaeConfig,
  validateSaeConfig,
} from "../src/sae/config.ts";

/** Asserts `input` is refused with a ConfigError whose message contains every `parts`. */
function assertRefused(input: Record<string, unknown>, ...parts: string[]): void {
  assert.throws(
    () => resolveSaeConfig({ dIn: 8, dSae: 4, ...input } as Parameters<typeof resolveSaeConfig>[0]),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
      assert.ok(error.message.startsWith("Invalid SAE config: "), error.message);
      for (const part of parts) {
        assert.ok(error.message.includes(part), `"${error.message}" should mention "${part}"`);
      }
      return true;
    },
  );
}

Deno.test("defaults merge under the given fields", () => {
  const config = resolveSaeConfig({ dIn: 8, dSae: 16, useDeltaLoss: true });
  assert.deepEqual(config, { ...DEFAULT_SAE_CONFIG, dIn: 8, dSae: 16, useDeltaLoss: true });
});

Deno.test("resolved lists are copies, not shared with the input or the defaults", () => {
  const steps = [1, 4];
  const config = resolveSaeConfig({ dIn: 8, dSae: 4, matryoshkaSteps: steps });
  assert.notEqual(config.matryoshkaSteps, steps);
  assert.notEqual(
    resolveSaeConfig({ dIn: 8, dSae: 4 }).matryoshkaSteps,
    DEFAULT_SAE_CONFIG.matryoshkaSteps,
  );
  config.matryoshkaSteps.push(5);
  assert.deepEqual(steps, [1, 4]);
});

Deno.test("fields given as undefined take their defaults", () => {
  const config = resolveSaeConfig({ dIn: 8, dSae: 4, lpNorm: undefined });
  assert.equal(config.lpNorm, DEFAULT_SAE_CONFIG.lpNorm);
});

Deno.test("the notebook config is valid and matches the notebook's cfg", () => {
  const config = resolveSaeConfig({ ...NOTEBOOK_SAE_CONFIG });
  assert.equal(config.dIn, 50);
  assert.equal(config.dSae, 4);
  assert.equal(config.l1Coefficient, 3e-2);
  assert.equal(config.normalizeSaeDecoder, false);
  assert.equal(config.scaleSparsityPenaltyByDecoderNorm, true);
  assert.equal(config.initEncoderAsDecoderTranspose, true);
  assert.equal(config.applyBDecToInput, true);
  assert.equal(config.bDecInitMethod, "zeros");
  assert.deepEqual(config.matryoshkaSteps, [1, 4]);
  assert.equal(config.skipOuterLoss, true);
  assert.equal(config.useDeltaLoss, false);
  validateSaeConfig(config);
});

Deno.test("refuses an unknown field", () => {
  assertRefused({ matryoshkaStep: [1] }, `"matryoshkaStep"`, "matryoshkaSteps");
});

Deno.test("refuses a missing dIn", () => {
  assertRefused({ dIn: undefined }, "dIn", "positive integer", "undefined");
});

Deno.test("refuses a dIn that is not a positive integer", () => {
  assertRefused({ dIn: 0 }, "dIn", "positive integer", "got 0");
  assertRefused({ dIn: 2.5 }, "dIn", "positive integer", "got 2.5");
});

Deno.test("refuses a dSae that is not a positive integer", () => {
  assertRefused({ dSae: -4 }, "dSae", "positive integer", "got -4");
  assertRefused({ dSae: "4" }, "dSae", "positive integer", `got "4"`);
});

Deno.test("refuses unsorted matryoshkaSteps", () => {
  assertRefused(
    { matryoshkaSteps: [4, 1] },
    "Invalid SAE config: matryoshkaSteps must be sorted ascending",
    "got [4, 1]",
  );
});

Deno.test("refuses repeated matryoshkaSteps", () => {
  assertRefused({ matryoshkaSteps: [1, 1, 4] }, "matryoshkaSteps", "without repeats", "[1, 1, 4]");
});

Deno.test("refuses a step of 0 or below", () => {
  assertRefused({ matryoshkaSteps: [0, 4] }, "matryoshkaSteps[0]", "[1, dSae = 4]", "got 0");
  assertRefused({ matryoshkaSteps: [-1, 4] }, "matryoshkaSteps[0]", "got -1");
});

Deno.test("refuses a non-integer step", () => {
  assertRefused({ matryoshkaSteps: [1.5, 4] }, "matryoshkaSteps[0]", "integer", "got 1.5");
});

Deno.test("refuses a step beyond dSae", () => {
  assertRefused({ matryoshkaSteps: [1, 5] }, "matryoshkaSteps[1]", "dSae = 4", "got 5");
});

Deno.test("refuses matryoshkaSteps that is not a list", () => {
  assertRefused({ matryoshkaSteps: 4 }, "matryoshkaSteps", "list", "got 4");
});

Deno.test("refuses an inner-loss multiplier list of the wrong length", () => {
  assertRefused(
    { matryoshkaSteps: [1, 4], matryoshkaInnerLossMultipliers: [0.25] },
    "matryoshkaInnerLossMultipliers",
    "one entry per Matryoshka step (2)",
    "got [0.25]",
  );
});

Deno.test("refuses an inner-L1 multiplier list of the wrong length", () => {
  assertRefused(
    { matryoshkaSteps: [1, 4], matryoshkaInnerL1LossMultipliers: [1, 1, 1] },
    "matryoshkaInnerL1LossMultipliers",
    "one entry per Matryoshka step (2)",
    "got [1, 1, 1]",
  );
});

Deno.test("an empty step list counts as one step for multiplier lists", () => {
  assert.doesNotThrow(() =>
    resolveSaeConfig({ dIn: 8, dSae: 4, matryoshkaInnerLossMultipliers: [0.5] })
  );
  assertRefused({ matryoshkaInnerLossMultipliers: [1, 1] }, "one entry per Matryoshka step (1)");
});

Deno.test("refuses a negative l1Coefficient", () => {
  assertRefused({ l1Coefficient: -0.1 }, "l1Coefficient", ">= 0", "got -0.1");
});

Deno.test("refuses negative multipliers", () => {
  assertRefused(
    { matryoshkaSteps: [1, 4], matryoshkaInnerLossMultipliers: [1, -1] },
    "matryoshkaInnerLossMultipliers[1]",
    ">= 0",
    "got -1",
  );
  assertRefused(
    { matryoshkaInnerL1LossMultipliers: -2 },
    "matryoshkaInnerL1LossMultipliers",
    "got -2",
  );
});

Deno.test("refuses a negative outerLossMultiplier", () => {
  assertRefused({ outerLossMultiplier: -1 }, "outerLossMultiplier", ">= 0", "got -1");
});

Deno.test("refuses lpNorm <= 0", () => {
  assertRefused({ lpNorm: 0 }, "lpNorm", "> 0", "got 0");
  assertRefused({ lpNorm: -1 }, "lpNorm", "> 0", "got -1");
});

Deno.test("refuses NaN and infinities in numeric fields", () => {
  assertRefused({ l1Coefficient: NaN }, "l1Coefficient", "finite", "got NaN");
  assertRefused({ lpNorm: Infinity }, "lpNorm", "finite", "got Infinity");
  assertRefused({ outerLossMultiplier: -Infinity }, "outerLossMultiplier", "got -Infinity");
  assertRefused({ dIn: Infinity }, "dIn", "got Infinity");
  assertRefused(
    { matryoshkaInnerLossMultipliers: NaN },
    "matryoshkaInnerLossMultipliers",
    "got NaN",
  );
  assertRefused(
    { matryoshkaSteps: [1, 4], matryoshkaInnerL1LossMultipliers: [1, Infinity] },
    "matryoshkaInnerL1LossMultipliers[1]",
    "got Infinity",
  );
});

Deno.test("refuses a bad bDecInitMethod", () => {
  assertRefused(
    { bDecInitMethod: "median" },
    "bDecInitMethod",
    "zeros, mean, geometric_median",
    `got "median"`,
  );
});

Deno.test("refuses a bad reconstructionLoss", () => {
  assertRefused({ reconstructionLoss: "mse" }, "reconstructionLoss", "MSE, L2", `got "mse"`);
});

Deno.test("refuses non-boolean switches", () => {
  const switches: (keyof SaeConfig)[] = [
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
  ];
  for (const key of switches) assertRefused({ [key]: 1 }, key, "true or false", "got 1");
});

Deno.test("refuses decoder normalisation together with decoder-norm-weighted sparsity", () => {
  assertRefused(
    { normalizeSaeDecoder: true, scaleSparsityPenaltyByDecoderNorm: true },
    "scaleSparsityPenaltyByDecoderNorm",
    "normalizeSaeDecoder",
  );
});

Deno.test("refuses a configuration with no loss term", () => {
  assertRefused(
    { matryoshkaSteps: [1, 4], matryoshkaInnerLossMultipliers: [0, 0], skipOuterLoss: true },
    "matryoshkaInnerLossMultipliers",
    "skipOuterLoss",
    "got [0, 0]",
  );
});

Deno.test("refuses an input that is not an object", () => {
  assert.throws(
    () => resolveSaeConfig(null as unknown as Parameters<typeof resolveSaeConfig>[0]),
    (error: unknown) => error instanceof ConfigError && error.message.includes("got null"),
  );
});

Deno.test("refuses bad TopK-family settings, naming the field", () => {
  const base = { dIn: 4, dSae: 4 };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ architecture: "jumprelu" }, /architecture must be one of standard, topk, batchtopk/],
    [{ architecture: "topk", k: 0 }, /k must be an integer in \[1, dSae = 4\], got 0/],
    [{ architecture: "batchtopk", k: 5 }, /k must be a number in \(0, dSae = 4\] for batchtopk/],
    [{ architecture: "batchtopk", k: 0 }, /k must be a number in \(0, dSae = 4\]/],
    [{ architecture: "topk", k: 0.5 }, /k must be an integer in \[1, dSae = 4\], got 0.5/],
    [{ k: 1.5 }, /k must be an integer/],
    [{ auxLossCoefficient: -1 }, /auxLossCoefficient must be a finite number >= 0/],
    [{ kAux: 0 }, /kAux must be a positive integer/],
    [{ deadFeatureWindow: 0 }, /deadFeatureWindow must be a positive integer/],
    [{ topkThresholdLr: 0 }, /topkThresholdLr must be a number in \(0, 1\]/],
  ];
  for (const [given, message] of cases) {
    assert.throws(() => resolveSaeConfig({ ...base, ...given } as never), message);
  }
  const config = resolveSaeConfig({ ...base, architecture: "batchtopk", k: 0.25, kAux: 3 });
  assert.deepEqual([config.architecture, config.k, config.kAux], ["batchtopk", 0.25, 3]);
  assert.equal(resolveSaeConfig(base).kAux, null); // ⌊dIn / 2⌋ when training
});
