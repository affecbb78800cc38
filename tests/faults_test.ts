/**
 * Fault injection: the mistakes and accidents of real users, each run as a subprocess of
 * `deno task balanced` or `deno task sweep`, asserting the exit status, a one-line message without
 * a stack trace, and that every file that was there before is intact. Cases: output folders that
 * hold other files, are files, lie under a file, are read-only, on a full file system or lack
 * Deno's write permission; seeds, steps and batch sizes out of range (and a batch the fused kernel
 * cannot run, which falls back); divergence recorded in the outputs with exit status 3; edited,
 * off-grid and mistyped sweep records; two sweeps on one folder; trees and grids too large; and
 * degenerate trees (no verdict). The read-only and full-disk cases mount a file system in a private
 * mount namespace (`unshare`), or use `chmod` when not root; where neither is possible they are
 * skipped with that reason.
 */
import assert from "node:assert/strict";
import { hasGpu } from "./_gpu.ts";
import { lockSweepFolder, manifestOf, rowsChecksum, writeManifest } from "../src/sweep/store.ts";
import { OutputError, writeOutputDir } from "../src/io/output_dir.ts";
import { saveSae } from "../src/io/sae_files.ts";
import { DEFAULT_SAE_CONFIG } from "../src/sae/config.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { initSaeRandom } from "../src/sae/init.ts";
import { checkSeed, Rng } from "../src/toy/rng.ts";
import { childProbsTree, degenerateReason, sweepTree } from "../src/sweep/axes.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";

const root = new URL("../", import.meta.url);
const deno = Deno.execPath();
const BALANCED = ["run", "--allow-read", "--allow-write", "--allow-env", "experiments/balanced.ts"];
const SWEEP = ["run", "--allow-read", "--allow-write", "--allow-env", "experiments/sweep.ts"];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[]): Promise<Outcome> {
  const out = await new Deno.Command(command, {
    args,
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const runDeno = (args: string[]) => run(deno, args);

/** `deno task balanced --out out --quiet` with further flags. */
const balancedIn = (out: string, flags: string[]) =>
  runDeno([...BALANCED, "--out", out, ...flags, "--quiet"]);

/** Exit status `code`, a first stderr line matching `message`, no stack trace. */
function assertRefused(r: Outcome, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit status (stderr: ${r.stderr.slice(0, 500)})`);
  const first = r.stderr.split("\n")[0]!;
  assert.match(first, message);
  assert.ok(first.length < 400, `one short line, got ${first.length} characters`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(r.stderr, /Uncaught/);
}

/** Every file under `dir` with its content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(`${dir}/${rel}`)) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(path);
      else files.set(path, await Deno.readTextFile(`${dir}/${path}`));
    }
  };
  await walk("");
  return files;
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    await fn(dir);
  } finally {
    await Deno.chmod(dir, 0o755).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

/** A user's folder: a thesis and a source tree. */
async function userFiles(dir: string): Promise<Map<string, string>> {
  await Deno.mkdir(`${dir}/src/sae`, { recursive: true });
  await Deno.writeTextFile(`${dir}/thesis.tex`, "\\chapter{Hedging}\n");
  await Deno.writeTextFile(`${dir}/src/sae/train.ts`, "export const x = 1;\n");
  return await snapshot(dir);
}

// ---- Output folders of `deno task balanced` (refused before any training: no GPU needed).

Deno.test("balanced and sweep refuse an output folder that holds other files, changing nothing", async () => {
  await withTemp(async (dir) => {
    const before = await userFiles(dir);
    for (const out of [dir, `${dir}/src`]) {
      const r = await runDeno([...BALANCED, "--out", out, "--steps", "5", "--quiet"]);
      assertRefused(r, 2, /holds files this command did not write/);
      assert.deepEqual(await snapshot(dir), before);
      const sweep = await runDeno([...SWEEP, "--out", out, "--steps", "5", "--quiet"]);
      assertRefused(sweep, 2, /the folder holds other files; nothing was changed/);
      assert.deepEqual(await snapshot(dir), before);
    }
  });
});

for (const [task, command] of [["balanced", BALANCED], ["sweep", SWEEP]] as const) {
  Deno.test(`${task} refuses an output path that is a file or lies under a file`, async () => {
    await withTemp(async (dir) => {
      await Deno.writeTextFile(`${dir}/notes.txt`, "mine\n");
      const before = await snapshot(dir);
      const file = await runDeno([...command, "--out", `${dir}/notes.txt`, "--quiet"]);
      assertRefused(file, 2, /notes\.txt: it is a file, not a folder/);
      const under = await runDeno([...command, "--out", `${dir}/notes.txt/run`, "--quiet"]);
      assertRefused(under, 2, /notes\.txt is a file, not a folder/);
      assert.deepEqual(await snapshot(dir), before);
    });
  });
}

Deno.test("balanced without Deno's write permission stops before training", async () => {
  await withTemp(async (dir) => {
    const r = await runDeno([
      "run",
      "--allow-read",
      "--allow-env",
      "experiments/balanced.ts",
      "--out",
      `${dir}/run`,
    ]);
    assertRefused(r, 2, /no write permission there; run it with --allow-write/);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

/** How this machine can make a read-only or a full file system for a subprocess. */
const isRoot = (await run("id", ["-u"])).stdout.trim() === "0";
const unshare = isRoot ? ["unshare", "-m"] : ["unshare", "-rm"];
const canMount = await (async () => {
  try {
    const dir = await Deno.makeTempDir();
    const r = await run(unshare[0]!, [
      ...unshare.slice(1),
      "sh",
      "-c",
      `mount -t tmpfs -o size=64k tmpfs '${dir}'`,
    ]);
    await Deno.remove(dir);
    return r.code === 0;
  } catch {
    return false;
  }
})();

/** `sh -c script` in a private mount namespace, with `$DENO` and `$D` set. */
function inNamespace(dir: string, script: string): Promise<Outcome> {
  return run(unshare[0]!, [
    ...unshare.slice(1),
    "env",
    `DENO=${deno}`,
    `D=${dir}`,
    "sh",
    "-c",
    script,
  ]);
}

Deno.test({
  name: "balanced refuses a read-only output location before training",
  ignore: isRoot && !canMount,
  fn: async () => {
    await withTemp(async (dir) => {
      const before = await userFiles(dir);
      const args = [...BALANCED, "--out", `${dir}/run`, "--quiet"];
      let r: Outcome;
      if (isRoot) {
        // Root ignores permissions: make the folder read-only with a read-only bind mount.
        const quoted = args.map((a) => `'${a}'`).join(" ");
        r = await inNamespace(
          dir,
          `mount --bind "$D" "$D" && mount -o remount,bind,ro "$D" && exec "$DENO" ${quoted}`,
        );
      } else {
        await Deno.chmod(dir, 0o555);
        r = await runDeno(args);
        await Deno.chmod(dir, 0o755);
      }
      assertRefused(r, 2, /Cannot write --out .*(Read-only file system|Permission denied)/);
      assert.deepEqual(await snapshot(dir), before);
    });
  },
});

Deno.test({
  name: "balanced refuses a full file system before training and keeps what is there",
  ignore: !canMount,
  fn: async () => {
    await withTemp(async (dir) => {
      const args = [...BALANCED, "--out", `${dir}/run`, "--quiet"].map((a) => `'${a}'`).join(" ");
      // A 1 MiB file system holding a user's file, then filled to the last block.
      const r = await inNamespace(
        dir,
        `mount -t tmpfs -o size=1m tmpfs "$D" && echo thesis > "$D/keep.txt" && ` +
          `(dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null || true) && ` +
          `"$DENO" ${args}; code=$?; echo "keep: $(cat "$D/keep.txt")"; ls -A "$D" >&2; ` +
          `exit $code`,
      );
      assertRefused(r, 2, /Cannot write --out .*No space left on device/);
      assert.match(r.stdout, /keep: thesis/);
    });
  },
});

// ---- Limits of `deno task balanced`, checked at the command line.

Deno.test("balanced refuses seeds, steps and batch sizes out of range, naming the range", async () => {
  const cases: [string[], RegExp][] = [
    [["--seed", "4294967296"], /--seed: expected an integer from 0 to 4294967295/],
    [["--steps", "2147483648"], /--steps: expected an integer from 1 to 2147483647/],
    [["--batch-size", "65537"], /--batch-size: expected an integer from 1 to 65536/],
  ];
  await withTemp(async (dir) => {
    for (const [flags, message] of cases) {
      const r = await runDeno([...BALANCED, "--out", `${dir}/run`, ...flags]);
      assertRefused(r, 2, message);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("seeds are one range in the library too: out of range is refused, never wrapped", () => {
  assert.throws(() => new Rng(2 ** 32), /Invalid seed: expected an integer from 0 to 4294967295/);
  assert.throws(() => new Rng(-1), /Invalid seed/);
  assert.throws(() => checkSeed("runs[0].seed", 2 ** 32 + 5), /runs\[0\]\.seed/);
  assert.notEqual(new Rng(5).nextU32(), new Rng(2 ** 32 - 5).nextU32());
  const sae = new MatryoshkaSAE({ ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2 });
  assert.throws(() => initSaeRandom(sae, 2 ** 32 + 1), /Invalid seed/);
  assert.throws(() => initSaeRandom(sae, 1.5), /Invalid seed/);
});

Deno.test({
  name: "a batch the fused kernel cannot run trains on the kernel set (auto falls back)",
  ignore: !hasGpu,
  fn: async () => {
    await withTemp(async (dir) => {
      const r = await balancedIn(`${dir}/run`, ["--steps", "2", "--batch-size", "65536"]);
      assert.equal(r.code, 0, r.stderr);
      const results = JSON.parse(await Deno.readTextFile(`${dir}/run/results.json`));
      assert.equal(results.batchSize, 65536);
      for (const run of results.runs) assert.equal(run.stepsDone, 2);
    });
  },
});

Deno.test({
  name: "divergence is recorded in the summary, results.json and cfg.json, with exit status 3",
  ignore: !hasGpu,
  fn: async () => {
    await withTemp(async (dir) => {
      const r = await balancedIn(`${dir}/run`, ["--lr", "1e3", "--steps", "20"]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stdout, /4 of 4 SAEs diverged: detached at step \d+/);
      assert.match(r.stderr, /4 of 4 SAEs diverged \(recorded in/);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      const results = JSON.parse(await Deno.readTextFile(`${dir}/run/results.json`));
      for (const run of results.runs) {
        assert.ok(run.diverged, `${run.name} diverged`);
        assert.ok(run.diverged.step >= 1 && run.diverged.step <= 20);
        assert.equal(run.stepsDone, run.diverged.step - 1);
        assert.match(run.diverged.reason, /not finite/);
        const cfg = JSON.parse(await Deno.readTextFile(`${dir}/run/saes/${run.name}/cfg.json`));
        assert.equal(cfg.diverged_at_step, run.diverged.step);
        assert.equal(cfg.steps_done, run.stepsDone);
      }
    });
  },
});

Deno.test("saveSae refuses a folder holding other files and leaves them", async () => {
  await withTemp(async (dir) => {
    const before = await userFiles(dir);
    const config = { ...DEFAULT_SAE_CONFIG, dIn: 3, dSae: 2 };
    const params = new Float32Array(paramLayout(3, 2).size);
    await assert.rejects(() => saveSae(dir, params, config), OutputError);
    assert.deepEqual(await snapshot(dir), before);
    await saveSae(`${dir}/sae`, params, config);
    await saveSae(`${dir}/sae`, params, config); // an SAE folder is replaced
    assert.deepEqual(Array.from(Deno.readDirSync(`${dir}/sae`), (e) => e.name).sort(), [
      "cfg.json",
      "sae_weights.safetensors",
    ]);
  });
});

Deno.test("a write that fails after training leaves the earlier output as it was (exit 1)", async () => {
  await withTemp(async (dir) => {
    const plan = { path: `${dir}/run`, files: ["results.json", "figures/a.svg"] };
    await writeOutputDir(plan, async (tmp) => {
      await Deno.writeTextFile(`${tmp}/results.json`, "old");
    });
    const error = await writeOutputDir(plan, async (tmp) => {
      await Deno.writeTextFile(`${tmp}/results.json`, "new, half");
      throw new Error("No space left on device (os error 28)");
    }).catch((e) => e);
    assert.ok(error instanceof OutputError);
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /No space left on device.*the folder was left as it was/);
    assert.deepEqual(await snapshot(dir), new Map([["run/results.json", "old"]]));
  });
});

// ---- Sweeps: sizes, records, locks, degenerate trees.

Deno.test("sweep refuses trees and grids too large, in one short line, before any work", async () => {
  await withTemp(async (dir) => {
    const probs = Array.from({ length: 10_000 }, () => "0.1").join(",");
    const many = await runDeno([...SWEEP, "--out", `${dir}/a`, "--child-probs", probs]);
    assertRefused(many, 2, /--child-probs: expected at most 1023 children.*10000 children/);
    assert.ok(many.stdout.length + many.stderr.length < 8000, "no flood of output");
    const seeds = await runDeno([...SWEEP, "--out", `${dir}/b`, "--seeds", "1000000"]);
    assertRefused(seeds, 2, /the grid would hold 44,000,000 SAEs .* at most 100,000/);
    const steps = await runDeno([...SWEEP, "--out", `${dir}/c`, "--steps", "4294967296"]);
    assertRefused(steps, 2, /--steps: expected an integer from 1 to 2147483647/);
    const refine = await runDeno([...SWEEP, "--out", `${dir}/d`, "--refine", "1000"]);
    assertRefused(refine, 2, /--refine: expected an integer from 0 to 20/);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

const TINY = ["--betas", "0,inf", "--seeds", "1", "--steps", "5", "--refine", "0", "--quiet"];

/** A finished tiny sweep in `dir/base` (trained once per test). */
async function tinySweep(dir: string): Promise<string> {
  const out = `${dir}/base`;
  const r = await runDeno([...SWEEP, "--out", out, "--child-probs", "0.15,0.15,0.15", ...TINY]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function copyDir(from: string, to: string): Promise<void> {
  const r = await run("cp", ["-a", from, to]);
  assert.equal(r.code, 0, r.stderr);
}

const RECORD = "chunks/chunk-00000.json";

Deno.test({
  name: "sweep records are verified on resume: an edit, an off-grid row, a wrong type",
  ignore: !hasGpu,
  fn: async () => {
    await withTemp(async (dir) => {
      const base = await tinySweep(dir);
      const resume = (out: string) =>
        runDeno([...SWEEP, "--out", out, "--child-probs", "0.15,0.15,0.15", ...TINY, "--resume"]);
      const edits: [
        string,
        (record: { rows: Record<string, unknown>[] }) => void,
        boolean,
        RegExp,
      ][] = [
        [
          "edited",
          (rec) => ((rec.rows[0]!.encoderCos as number[])[1] = 0.5),
          false,
          /do not match their checksum/,
        ],
        ["offgrid", (rec) => (rec.rows[1]!.seed = 7), true, /not part of this sweep: seed 7/],
        ["mistyped", (rec) => (rec.rows[0]!.seed = "zero"), true, /field "seed" should be/],
      ];
      for (const [name, edit, fixChecksum, message] of edits) {
        const out = `${dir}/${name}`;
        await copyDir(base, out);
        const record = JSON.parse(await Deno.readTextFile(`${out}/${RECORD}`));
        edit(record);
        if (fixChecksum) record.checksum = await rowsChecksum(record.rows);
        await Deno.writeTextFile(`${out}/${RECORD}`, JSON.stringify(record) + "\n");
        const before = await snapshot(out);
        const r = await resume(out);
        assertRefused(r, 2, message);
        assert.match(
          r.stderr.split("\n")[0]!,
          /chunk-00000\.json.*delete (it|the record) to retrain/,
        );
        assert.deepEqual(await snapshot(out), before, `${name}: nothing changed`);
      }
      // A manifest field of the wrong type is refused too, naming the field.
      const tampered = `${dir}/manifest`;
      await copyDir(base, tampered);
      const manifest = JSON.parse(await Deno.readTextFile(`${tampered}/manifest.json`));
      manifest.seeds = "3";
      await Deno.writeTextFile(`${tampered}/manifest.json`, JSON.stringify(manifest));
      assertRefused(await resume(tampered), 2, /manifest\.json: field "seeds" should be/);
      // The untouched folder resumes (nothing to train) and keeps its verdict.
      const ok = await resume(base);
      assert.equal(ok.code, 0, ok.stderr);
    });
  },
});

Deno.test({
  name: "a second sweep on a folder in use stops with a clear message",
  ignore: !hasGpu,
  fn: async () => {
    await withTemp(async (dir) => {
      const base = await tinySweep(dir);
      const before = await snapshot(base);
      {
        using _held = await lockSweepFolder(base);
        const r = await runDeno([
          ...SWEEP,
          "--out",
          base,
          "--child-probs",
          "0.15,0.15,0.15",
          ...TINY,
          "--resume",
        ]);
        assertRefused(r, 2, /another sweep is working on it \(pid \d+/);
      }
      assert.deepEqual(await snapshot(base), before);
    });
  },
});

Deno.test({
  name: "a tree whose children never fire gets a warning and no verdict",
  ignore: !hasGpu,
  fn: async () => {
    await withTemp(async (dir) => {
      const out = `${dir}/zero`;
      const r = await runDeno([...SWEEP, "--out", out, "--child-probs", "0,0,0", ...TINY]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /warning: probs-0-0-0: no verdict: degenerate world: child 1 \(p=0\)/);
      assert.doesNotMatch(r.stdout, /balanceable/);
      const json = JSON.parse(await Deno.readTextFile(`${out}/sweep.json`));
      assert.equal(json.trees[0].balanceable, null);
      assert.match(json.trees[0].error, /degenerate world/);
    });
  },
});

Deno.test("a tree whose parent never fires is degenerate; the notebook's trees are not", () => {
  const silentParent = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{ activeProb: 0, children: [{ activeProb: 0.5 }, { activeProb: 0.5 }] }],
  });
  assert.match(
    String(degenerateReason(sweepTree("silent", silentParent))),
    /the parent \(feature 0\) never fires/,
  );
  const oneSilent = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{ activeProb: 0.3, children: [{ activeProb: 0.5 }, { activeProb: 0 }] }],
  });
  assert.match(
    String(degenerateReason(sweepTree("one", oneSilent))),
    /^child 2 \(p=0\) never fires$/,
  );
  const fine = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{ activeProb: 0.3, children: [{ activeProb: 0.5 }, { activeProb: 0.2 }] }],
  });
  assert.equal(degenerateReason(sweepTree("fine", fine)), null);
});

Deno.test("a merge refuses an output folder holding other files", async () => {
  await withTemp(async (dir) => {
    const before = await userFiles(dir);
    await Deno.mkdir(`${dir}/shard`);
    const settings = {
      steps: 5,
      batchSize: 128,
      lr: 3e-4,
      betas: [0],
      seeds: 1,
      trees: [childProbsTree([0.15])],
      evalRows: 1000,
      betaForm: "uniform" as const,
      l1Coefficient: 0.03,
      architecture: "standard" as const,
      k: 1,
    };
    await writeManifest(`${dir}/shard`, manifestOf(settings, { index: 0, count: 2 }));
    const r = await runDeno([...SWEEP, "--merge", `${dir}/shard`, "--out", dir]);
    assertRefused(r, 2, /holds other files|did not write/);
    for (const [path, content] of before) {
      assert.equal(await Deno.readTextFile(`${dir}/${path}`), content);
    }
  });
});
