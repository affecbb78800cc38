/**
 * `--shard auto`: the shard from a Slurm job array's or a Kubernetes Indexed Job's environment,
 * bad environments refused by name, and two shards run as separate `deno task sweep` processes
 * (one as a Slurm task, one as an Indexed Job pod) merged by a third process into the unsharded
 * sweep's files byte for byte.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { SHARD_ENV, shardFromEnv } from "../src/sweep/shard_env.ts";
import { SweepAxisError } from "../src/sweep/axes.ts";
import { parseSweepArgs } from "../experiments/sweep.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("a Slurm array's task is its position in the array", () => {
  const slurm = (id: string, count: string, more: Record<string, string> = {}) =>
    shardFromEnv(envOf({ SLURM_ARRAY_TASK_ID: id, SLURM_ARRAY_TASK_COUNT: count, ...more }));
  assert.deepEqual(slurm("0", "2"), { index: 0, count: 2 });
  assert.deepEqual(slurm("1", "2"), { index: 1, count: 2 });
  // --array=1-4: ids 1..4 are shards 0..3.
  assert.deepEqual(slurm("4", "4", { SLURM_ARRAY_TASK_MIN: "1" }), { index: 3, count: 4 });
  // --array=0-12:4: ids 0, 4, 8, 12 are shards 0..3.
  assert.deepEqual(
    slurm("8", "4", { SLURM_ARRAY_TASK_MIN: "0", SLURM_ARRAY_TASK_STEP: "4" }),
    { index: 2, count: 4 },
  );
  // --shard-count may be given when it agrees.
  const env = envOf({ SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_COUNT: "3" });
  assert.deepEqual(shardFromEnv(env, 3), { index: 2, count: 3 });
});

Deno.test("an Indexed Job's pod is JOB_COMPLETION_INDEX of --shard-count", () => {
  assert.deepEqual(shardFromEnv(envOf({ JOB_COMPLETION_INDEX: "0" }), 2), { index: 0, count: 2 });
  assert.deepEqual(shardFromEnv(envOf({ JOB_COMPLETION_INDEX: "5" }), 6), { index: 5, count: 6 });
});

Deno.test("bad scheduler environments are refused in one line naming the variable", () => {
  const refused = (vars: Record<string, string>, count: number | undefined, pattern: RegExp) =>
    assert.throws(() => shardFromEnv(envOf(vars), count), (error: Error) => {
      assert.ok(error instanceof SweepAxisError, String(error));
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("\n"), error.message);
      return true;
    });
  refused({}, undefined, /^Invalid --shard auto: expected SLURM_ARRAY_TASK_ID and .*got neither/);
  refused({ SLURM_ARRAY_TASK_ID: "0" }, undefined, /^Invalid SLURM_ARRAY_TASK_COUNT: .*nothing/);
  refused({ SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "2" }, undefined, /TASK_ID: .*"x"/);
  refused({ SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_COUNT: "2" }, undefined, /gaps.*"2"/);
  // --array=0,2,5 (3 tasks): id 5 is not MIN + k·STEP for k < 3.
  refused(
    { SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_COUNT: "3", SLURM_ARRAY_TASK_MIN: "0" },
    undefined,
    /^Invalid SLURM_ARRAY_TASK_ID/,
  );
  refused({ SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_COUNT: "2" }, 3, /^Invalid --shard-count/);
  refused({ JOB_COMPLETION_INDEX: "1" }, undefined, /^Invalid --shard-count: .*nothing/);
  refused({ JOB_COMPLETION_INDEX: "2" }, 2, /^Invalid JOB_COMPLETION_INDEX: .*below.*\(2\)/);
  refused({ JOB_COMPLETION_INDEX: "-1" }, 2, /^Invalid JOB_COMPLETION_INDEX: .*≥ 0/);
});

Deno.test("--shard-count only goes with --shard auto", async () => {
  await assert.rejects(
    parseSweepArgs(["--shard", "0/2", "--shard-count", "2"]),
    /^UsageError: Invalid --shard-count: expected it only with --shard auto/,
  );
  await assert.rejects(
    parseSweepArgs(["--shard-count", "0"]),
    /--shard-count: expected an integer ≥ 1/,
  );
});

/** `deno task sweep` as its own process with only `vars` from the scheduler. */
async function sweepProcess(args: string[], vars: Record<string, string> = {}): Promise<string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(Deno.env.toObject())) {
    if (!Object.values(SHARD_ENV).includes(name as never)) env[name] = value;
  }
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "experiments/sweep.ts", ...args],
    cwd: new URL("..", import.meta.url),
    env: { ...env, ...vars },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, text);
  return text;
}

gpuTest(
  "two --shard auto processes merged by a third equal the unsharded sweep byte for byte",
  async () => {
    const root = await Deno.makeTempDir({ prefix: "shard_env_" });
    try {
      // 2 trees × 3 β × 1 seed = 6 grid SAEs, PNG figures too.
      const sweep = [
        "--betas",
        "0,0.25,inf",
        "--seeds",
        "1",
        "--steps",
        "100",
        "--refine",
        "0",
        "--format",
        "svg,png",
        "--quiet",
      ];
      await sweepProcess([...sweep, "--out", `${root}/whole`]);
      const slurm = await sweepProcess([...sweep, "--shard", "auto", "--out", `${root}/task0`], {
        SLURM_ARRAY_TASK_ID: "0",
        SLURM_ARRAY_TASK_COUNT: "2",
      });
      assert.match(slurm, /shard 0\/2/);
      const pod = await sweepProcess(
        [...sweep, "--shard", "auto", "--shard-count", "2", "--out", `${root}/pod1`],
        { JOB_COMPLETION_INDEX: "1" },
      );
      assert.match(pod, /shard 1\/2/);
      await sweepProcess([
        "--merge",
        `${root}/task0`,
        `${root}/pod1`,
        "--out",
        `${root}/merged`,
        "--format",
        "svg,png",
      ]);
      const files = async (dir: string) => {
        const names = ["sweep.csv", "sweep.json"];
        for await (const entry of Deno.readDir(`${dir}/figures`)) {
          names.push(
            `figures/${entry.name}`,
          );
        }
        return new Map(
          await Promise.all(
            names.sort().map(async (n) => [n, await Deno.readFile(`${dir}/${n}`)] as const),
          ),
        );
      };
      const whole = await files(`${root}/whole`);
      const merged = await files(`${root}/merged`);
      assert.deepEqual([...merged.keys()], [...whole.keys()]);
      assert.ok([...whole.keys()].some((n) => n.endsWith(".png")));
      for (const [name, bytes] of whole) {
        assert.ok(
          merged.get(name)!.length === bytes.length &&
            merged.get(name)!.every((b, i) => b === bytes[i]),
          `${name} differs`,
        );
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
