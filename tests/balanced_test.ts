/**
 * `deno task balanced` end to end (shortened schedule): the notebook's story in the numbers, the
 * output folder, reproducibility, the command line's refusals, the no-adapter message, and the
 * README's notebook cell run as written.
 */
import assert from "node:assert/strict";
import { hasGpu } from "./_gpu.ts";
import { loadSae } from "../src/io/sae_files.ts";

const root = new URL("../", import.meta.url);
const deno = Deno.execPath();

async function runDeno(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(deno, {
    args,
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const BALANCED = ["run", "--allow-read", "--allow-write", "--allow-env", "experiments/balanced.ts"];

interface Results {
  adapter: string;
  seed: number;
  steps: number;
  batchSize: number;
  seconds: number;
  runs: {
    name: string;
    title: string;
    beta: number | null;
    encoderCosSims: number[][];
    decoderCosSims: number[][];
    finalLoss: number;
    edges: {
      parent: number;
      child: number;
      latent: number;
      encoderCos: number;
      decoderCos: number;
      absorptionGap: number;
    }[];
    metrics: { mccEncoder: number; explainedVariance: number; rows: number; l0: number };
  }[];
}

async function balanced(
  out: string,
  steps: number,
  seed = 0,
  extra: string[] = [],
): Promise<Results & { stdout: string }> {
  const r = await runDeno([
    ...BALANCED,
    "--steps",
    String(steps),
    "--seed",
    String(seed),
    "--out",
    out,
    "--quiet",
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return { ...JSON.parse(await Deno.readTextFile(`${out}/results.json`)), stdout: r.stdout };
}

Deno.test({
  name: "a shortened balanced run tells the notebook's story and writes every output",
  ignore: !hasGpu,
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const results = await balanced(`${out}/run`, 1500);
      assert.equal(results.steps, 1500);
      // One line says that the kernels compile, and how long that took, before training.
      assert.match(
        results.stdout,
        /\ncompiling the training kernels… \d+\.\d\d s \(fused engine\)\n/,
      );
      assert.equal(results.batchSize, 128);
      const byName = Object.fromEntries(results.runs.map((r) => [r.name, r]));
      const children = (name: string) => byName[name]!.encoderCosSims[0]!.slice(1);
      const detached = children("detached");
      const standard = children("standard");
      const balancedKids = children("balanced");
      const unbalanced = children("unbalanceable");
      // β = 0: the parent latent's encoder absorbs every child (negative components).
      assert.ok(standard.every((c) => c < -0.1), `standard: ${standard}`);
      // β = ∞: it hedges (positive components), in the encoder and the decoder.
      assert.ok(detached.every((c) => c > 0.1), `detached: ${detached}`);
      assert.ok(byName.detached!.decoderCosSims[0]!.slice(1).every((c) => c > 0.1));
      // β = 0.25 keeps them nearer zero than both.
      const maxAbs = (v: number[]) => Math.max(...v.map(Math.abs));
      assert.ok(maxAbs(balancedKids) < 0.05, `balanced: ${balancedKids}`);
      assert.ok(maxAbs(balancedKids) < Math.min(maxAbs(standard), maxAbs(detached)));
      // Unequal children: no single β cancels every child (mixed signs or a large residual).
      assert.ok(maxAbs(unbalanced) > 0.05, `unbalanceable: ${unbalanced}`);
      assert.deepEqual(results.runs.map((r) => r.beta), [null, 0, 0.25, 0.17]);
      for (const run of results.runs) {
        // The scorecard's edges are the latent-0 readings: the parent is matched to latent 0.
        assert.deepEqual(run.edges.map((e) => [e.parent, e.child, e.latent]), [
          [0, 1, 0],
          [0, 2, 0],
          [0, 3, 0],
        ]);
        assert.deepEqual(run.edges.map((e) => e.encoderCos), run.encoderCosSims[0]!.slice(1));
        assert.deepEqual(run.edges.map((e) => e.decoderCos), run.decoderCosSims[0]!.slice(1));
        assert.ok(run.edges.every((e) => Number.isFinite(e.absorptionGap)), run.name);
        assert.ok(Number.isFinite(run.finalLoss));
        assert.ok(run.metrics.mccEncoder > 0.8 && run.metrics.explainedVariance > 0.9, run.name);
      }
      const files = [...Deno.readDirSync(`${out}/run`)].map((e) => e.name).sort();
      assert.deepEqual(files, [
        "results.json",
        "saes",
        "toy_mat_balanced.svg",
        "toy_mat_unbalanceable.svg",
        "toy_sae_abs.svg",
        "toy_sae_mat_detached.svg",
      ]);
      const svg = await Deno.readTextFile(`${out}/run/toy_mat_balanced.svg`);
      assert.match(svg, /Balanced Matryoshka SAE \(β = 0\.25\)/);
      for (const name of ["detached", "standard", "balanced", "unbalanceable"]) {
        const saeFiles = [...Deno.readDirSync(`${out}/run/saes/${name}`)].map((e) => e.name).sort();
        assert.deepEqual(saeFiles, ["cfg.json", "sae_weights.safetensors"]);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "balanced --arch batchtopk trains BatchTopK SAEs and saves them as JumpReLUs that load back",
  ignore: !hasGpu,
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const results = await balanced(`${out}/run`, 400, 0, ["--arch", "batchtopk", "--k", "1"]);
      assert.match(
        results.stdout,
        /compiling the training kernels… \d+\.\d\d s \(kernels engine\)/,
      );
      const raw = JSON.parse(await Deno.readTextFile(`${out}/run/results.json`));
      assert.deepEqual([raw.architecture, raw.k], ["batchtopk", 1]);
      const byName = Object.fromEntries(results.runs.map((r) => [r.name, r]));
      // β = ∞ hedges already (positive child components of the parent latent's encoder), and
      // every run keeps its parent on latent 0 with a positive threshold.
      const detached = byName.detached!.encoderCosSims[0]!.slice(1);
      assert.ok(detached.every((c) => c > 0.05), `detached: ${detached}`);
      assert.match(byName.balanced!.title, /BatchTopK k = 1$/);
      for (const run of raw.runs) {
        assert.ok(run.threshold > 0, `${run.name} θ ${run.threshold}`);
        const loaded = await loadSae(`${out}/run/saes/${run.name}`);
        assert.equal(loaded.config.architecture, "batchtopk");
        assert.ok(Math.abs(loaded.topkState.threshold - run.threshold) < 1e-6);
        const cfg = JSON.parse(await Deno.readTextFile(`${out}/run/saes/${run.name}/cfg.json`));
        assert.equal(cfg.architecture, "jumprelu");
        // The metrics read the SAE as a JumpReLU: about one latent per row or fewer fires.
        assert.ok(run.metrics.l0 > 0.2 && run.metrics.l0 < 1.2, `${run.name} L0 ${run.metrics.l0}`);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "two balanced runs with the same seed write identical cosine tables; --eval-rows sets " +
    "the metrics' rows only",
  ignore: !hasGpu,
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const a = await balanced(`${out}/a`, 200, 3);
      const b = await balanced(`${out}/b`, 200, 3, ["--eval-rows", "5000"]);
      for (const [i, run] of a.runs.entries()) {
        assert.deepEqual(run.encoderCosSims, b.runs[i]!.encoderCosSims);
        assert.deepEqual(run.decoderCosSims, b.runs[i]!.decoderCosSims);
        assert.equal(run.metrics.rows, 100_000);
        assert.equal(b.runs[i]!.metrics.rows, 5000);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("bad flags are refused with the usage and an existing output folder is kept", async () => {
  const out = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${out}/marker.txt`, "keep me");
    const unknown = await runDeno([...BALANCED, "--out", out, "--stepz", "5"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /stepz/);
    assert.match(unknown.stderr, /Usage: deno task balanced/);
    const negative = await runDeno([...BALANCED, "--out", out, "--steps=-5"]);
    assert.equal(negative.code, 2);
    assert.match(
      negative.stderr,
      /Cannot parse --steps: expected an integer from 1 to 2147483647, got "-5"/,
    );
    const lr = await runDeno([...BALANCED, "--out", out, "--lr", "fast"]);
    assert.equal(lr.code, 2);
    assert.match(lr.stderr, /--lr: expected a positive number, got "fast"/);
    const evalRows = await runDeno([...BALANCED, "--out", out, "--eval-rows", "0"]);
    assert.equal(evalRows.code, 2);
    assert.match(
      evalRows.stderr,
      /Cannot parse --eval-rows: expected an integer from 1 to 2147483648, got "0"/,
    );
    const format = await runDeno([...BALANCED, "--out", out, "--format", "svg,jpg"]);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /Cannot parse --format: expected svg, png or pdf.*got "svg,jpg"/);
    const arch = await runDeno([...BALANCED, "--out", out, "--arch", "gated"]);
    assert.equal(arch.code, 2);
    assert.match(
      arch.stderr,
      /Cannot parse --arch: expected standard, topk or batchtopk, got "gated"/,
    );
    const k = await runDeno([...BALANCED, "--out", out, "--arch", "batchtopk", "--k", "5"]);
    assert.equal(k.code, 2);
    assert.match(k.stderr, /Cannot parse --k: expected a number above 0, at most 4, for batchtopk/);
    const topk = await runDeno([...BALANCED, "--out", out, "--arch", "topk", "--k", "0.5"]);
    assert.equal(topk.code, 2);
    assert.match(topk.stderr, /Cannot parse --k: expected an integer from 1 to 4, got "0.5"/);
    assert.equal(await Deno.readTextFile(`${out}/marker.txt`), "keep me");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("with no WebGPU adapter the task prints what was tried and how to fix it", async () => {
  const out = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${out}/marker.txt`, "keep me");
    const r = await runDeno([
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--preload",
      "tests/fixtures/no_adapter.ts",
      "experiments/balanced.ts",
      "--out",
      `${out}/balanced`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No WebGPU adapter: navigator\.gpu\.requestAdapter/);
    assert.match(r.stderr, /apt-get install -y mesa-vulkan-drivers/);
    assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/); // no stack trace
    assert.equal(await Deno.readTextFile(`${out}/marker.txt`), "keep me");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test({
  name: "the README's notebook cell runs as written (shortened)",
  ignore: !hasGpu,
  fn: async () => {
    const readme = await Deno.readTextFile(new URL("README.md", root));
    const block = readme.match(
      /<!-- readme-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- readme-example:end -->/,
    );
    assert.ok(block, "README has the example block");
    // The block imports "./mod.ts": run it from the repository root, as a reader would.
    const script = new URL(".readme_example.ts", root);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(script, block[1]!);
      const out = await new Deno.Command(deno, {
        args: ["run", "--allow-read", "--allow-write", "--allow-env", script.pathname],
        cwd: dir,
        env: { STEPS: "300", XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const svg = await Deno.readTextFile(`${dir}/plots/toy_mat_balanced.svg`);
      assert.match(svg, /<svg/);
      assert.match(svg, /SAE encoder/);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(script).catch(() => {});
    }
  },
});
