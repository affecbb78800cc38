/**
 * The WebGPU runtime: shader errors name the file and line, buffers above a device limit are
 * refused naming the limit, pipelines are cached, and large dispatches are folded into 2-D grids.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { BufferLimitError, checkBufferSize, createStorage, readU32 } from "../src/gpu/buffers.ts";
import {
  bindGroup,
  dispatch,
  getPipeline,
  ShaderCompileError,
  workgroupGrid,
} from "../src/gpu/pipelines.ts";
import { describeAdapter } from "../src/gpu/device.ts";
import { probeDevices } from "../src/gpu/backend_choice.ts";

const GOOD = "@compute @workgroup_size(1) fn main() {}\n";

gpuTest("a WGSL error is reported with the file and the line inside it", async (gpu) => {
  const files = [
    { path: "shaders/lib/first.wgsl", code: "// a library\nfn helper() -> f32 { return 1.0; }\n" },
    { path: "shaders/broken.wgsl", code: "// line 1\n// line 2\nfn oops( {\n" + GOOD },
  ];
  await assert.rejects(
    getPipeline(gpu, { label: "broken", files, entryPoint: "main" }),
    (error: unknown) => {
      assert.ok(error instanceof ShaderCompileError);
      assert.match(error.message, /shaders\/broken\.wgsl:3:\d+: /);
      return true;
    },
  );
});

gpuTest("pipelines are compiled once per source, entry point and constants", async (gpu) => {
  const spec = {
    label: "cached",
    files: [{ path: "shaders/x.wgsl", code: GOOD }],
    entryPoint: "main",
  };
  const a = await getPipeline(gpu, spec);
  const b = await getPipeline(gpu, { ...spec });
  assert.equal(a, b);
});

gpuTest("two different sources of equal length get different pipelines", async (gpu) => {
  // Same path, entry point and length; only the value written differs.
  const source = (v: number) =>
    `@group(0) @binding(1) var<storage, read_write> out: array<u32>;\n` +
    `@compute @workgroup_size(1) fn main() { out[0] = ${v}u; }\n`;
  assert.equal(source(7).length, source(9).length);
  const spec = (v: number) => ({
    label: `equal length ${v}`,
    files: [{ path: "shaders/same_length.wgsl", code: source(v) }],
    entryPoint: "main",
  });
  const [seven, nine] = [await getPipeline(gpu, spec(7)), await getPipeline(gpu, spec(9))];
  assert.notEqual(seven, nine);
  // And each runs its own source, bound sparsely (only @binding(1)).
  for (const [pipeline, want] of [[seven, 7], [nine, 9]] as const) {
    const out = createStorage(gpu, "out", 4);
    const encoder = gpu.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    dispatch(gpu, pass, pipeline, bindGroup(gpu, pipeline, { 1: out }), 1);
    pass.end();
    gpu.device.queue.submit([encoder.finish()]);
    assert.equal((await readU32(gpu, out))[0], want);
    out.destroy();
  }
});

gpuTest("a buffer above a device limit is refused with the limit's name", (gpu) => {
  const limit = gpu.device.limits.maxStorageBufferBindingSize;
  assert.throws(
    () => createStorage(gpu, "huge scratch", limit + 4),
    (error: unknown) => {
      assert.ok(error instanceof BufferLimitError);
      assert.match(error.message, /Buffer "huge scratch" needs \d+ bytes/);
      assert.match(error.message, /maxStorageBufferBindingSize \(\d+ bytes\)/);
      return true;
    },
  );
  assert.throws(
    () => checkBufferSize(gpu, "enormous", gpu.device.limits.maxBufferSize + 1, false),
    /maxBufferSize/,
  );
});

gpuTest("dispatches beyond the per-dimension limit fold into two dimensions", (gpu) => {
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  assert.deepEqual(workgroupGrid(gpu, 10), [10, 1]);
  const [x, y] = workgroupGrid(gpu, max * 3 + 1);
  assert.ok(x <= max && y === 4 && x * y >= max * 3 + 1);
});

gpuTest("the adapter is described by name and kind", (gpu) => {
  const text = describeAdapter(gpu.summary);
  assert.ok(text.startsWith(gpu.summary.name));
  assert.match(text, /\[(fallback|hardware), /);
});

/**
 * `deno task adapter`'s first line, run with exactly the environment `env` (plus PATH, HOME) and
 * `--allow-env` (plus `--allow-run=ls` when `mayList`).
 */
async function adapterLine(env: Record<string, string>, mayList = false): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", ...(mayList ? ["--allow-run=ls"] : []), "experiments/adapter.ts"],
    cwd: new URL("../", import.meta.url),
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/",
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.code === 0 ? out.stdout : out.stderr);
  return text.split("\n")[0]!;
}

gpuTest(
  "GL where the machine has no GPU, else Deno's first adapter, unless DENO_WEBGPU_BACKEND names one",
  async () => {
    // What the machine has, as the choice sees it (the test process may run ls).
    const devices = await probeDevices();
    assert.ok(Deno.build.os !== "linux" || devices !== null, "ls lists the folders on Linux");
    const { gpuNodes, mesaEgl } = devices ?? { gpuNodes: ["(not Linux)"], mesaEgl: false };
    // No backend asked for (and no XDG_RUNTIME_DIR: Mesa's GL would complain without it).
    const chosen = await adapterLine({}, true);
    // Without leave to list /dev: Deno's first adapter.
    const first = await adapterLine({});
    if (gpuNodes.length === 0 && mesaEgl) {
      assert.match(
        chosen,
        /^adapter: llvmpipe.*\[fallback, gl: no GPU device in \/dev; llvmpipe through GL trains faster than lavapipe\]$/,
      );
    } else {
      assert.equal(chosen, first);
    }
    if (first.includes("[fallback, ")) {
      assert.match(
        first,
        /\[fallback, default: CPU adapter, Deno's first; DENO_WEBGPU_BACKEND=gl \(llvmpipe\) trains faster\]$/,
      );
    } else {
      assert.match(first, /\[hardware, default: hardware adapter\]$/);
    }
    const asked = await adapterLine({ DENO_WEBGPU_BACKEND: "gl" });
    assert.match(asked, /, gl: DENO_WEBGPU_BACKEND=gl\]$|^No WebGPU adapter/);
    // An empty variable offers no backend to Deno: the message says what was asked for.
    const empty = await adapterLine({ DENO_WEBGPU_BACKEND: "" });
    assert.match(empty, /^No WebGPU adapter: .*\(backend: DENO_WEBGPU_BACKEND=""\)/);
  },
);
