/**
 * Acquires the WebGPU adapter and device once per process, with the largest buffer and workgroup
 * limits the adapter offers, and describes the adapter for experiment headers.
 *
 * The backend: `DENO_WEBGPU_BACKEND` when set; else what the registered {@link BackendChoice}
 * says (the Deno entry points register `src/gpu/backend_choice.ts`: llvmpipe through GL on a
 * Linux machine without a GPU, which trains this project's kernels faster than lavapipe through
 * Vulkan); else Deno's first adapter. The summary says which and why. The choice is made before
 * the first request: Deno's instance loads its backends then, and a GL device beside a loaded
 * Vulkan backend corrupted the heap at process exit about one run in four (the doc tests,
 * 2026-12-03).
 *
 * When no adapter can be had, {@link getGpu} rejects with a {@link GpuUnavailableError} whose message
 * says what was tried and how to get a software adapter on Linux; command-line entry points print
 * that message alone (see `src/cli/run_main.ts`).
 */

/**
 * What experiments print about the adapter in their header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type AdapterSummary, describeAdapter } from "./device.ts";
 * const summary: AdapterSummary = {
 *   name: "llvmpipe (LLVM 15.0.6, 256 bits)",
 *   vendor: "mesa",
 *   isFallback: true,
 *   backend: "vulkan",
 *   reason: "DENO_WEBGPU_BACKEND=vulkan",
 * };
 * assert.equal(
 *   describeAdapter(summary),
 *   "llvmpipe (LLVM 15.0.6, 256 bits) [fallback, vulkan: DENO_WEBGPU_BACKEND=vulkan]",
 * );
 * ```
 */
export interface AdapterSummary {
  /** Human-readable adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  name: string;
  /** Vendor string reported by the adapter (may be a numeric PCI id). */
  vendor: string;
  /** True when the adapter is a software (CPU) fallback such as llvmpipe or lavapipe. */
  isFallback: boolean;
  /** What `DENO_WEBGPU_BACKEND` asked for (`gl`, `vulkan`, …), or `default` for Deno's first adapter. */
  backend: string;
  /** Why this backend, in words. */
  reason: string;
}

/**
 * The process-wide GPU handles.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu, type Gpu } from "./device.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * const gpu: Gpu = await getGpu();
 * assert.ok(gpu.device.limits.maxStorageBufferBindingSize > 0);
 * const model = new ToyModel({ nFeatures: 2, hiddenDim: 3 });
 * const x = await model.embed(Float32Array.from([1, 0]), gpu); // pass the handles to share them
 * assert.deepEqual(x, model.embedding.slice(0, 3)); // feature 0's direction
 * ```
 */
export interface Gpu {
  /** The WebGPU adapter the device was requested from. */
  adapter: GPUAdapter;
  /** The device every buffer, pipeline and dispatch of the process uses. */
  device: GPUDevice;
  /** The adapter's description for experiment headers. */
  summary: AdapterSummary;
}

/**
 * Thrown when no WebGPU adapter or device could be acquired.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getGpu, GpuUnavailableError } from "./device.ts";
 * const gpu = await getGpu().catch((error) => {
 *   if (!(error instanceof GpuUnavailableError)) throw error;
 *   assert.equal(error.exitCode, 1); // what a command exits with
 *   return null; // no adapter: skip the GPU work
 * });
 * assert.ok(gpu === null || gpu.summary.name.length > 0);
 * ```
 */
export class GpuUnavailableError extends Error {
  /** Error name shown in stack traces and messages. */
  override name = "GpuUnavailableError";
  /** Exit status of a command that stops on this error. */
  readonly exitCode = 1;
}

let pending: Promise<Gpu> | undefined;

/** The limits we raise to the adapter's maximum; all others stay at the WebGPU defaults. */
const RAISED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** The environment variable through which Deno's WebGPU picks backends. */
const BACKEND_VARIABLE = "DENO_WEBGPU_BACKEND";
/** What the header says of a CPU adapter that Deno chose. */
const CPU_REASON = "CPU adapter, Deno's first; DENO_WEBGPU_BACKEND=gl (llvmpipe) trains faster";

/** The variable's value (possibly empty), or undefined when unset or not readable (no --allow-env). */
function envVariable(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** `DENO_WEBGPU_BACKEND` (even empty: Deno then offers no backend), or undefined when unset. */
function requestedBackend(): string | undefined {
  return envVariable(BACKEND_VARIABLE);
}

/** The system's temporary folder (`TMPDIR`, else `/tmp`). */
function tmpDir(): string {
  return envVariable("TMPDIR") || "/tmp";
}

function backendName(): string {
  const requested = requestedBackend();
  return requested === undefined ? "default" : `${BACKEND_VARIABLE}=${JSON.stringify(requested)}`;
}

const REQUEST: GPURequestAdapterOptions = { powerPreference: "high-performance" };

/**
 * A backend to ask Deno for, and why, when `DENO_WEBGPU_BACKEND` is unset; undefined for Deno's
 * first adapter. Deno entry points register one (`src/gpu/backend_choice.ts`: GL on machines
 * without a GPU); the browser build has none.
 */
export type BackendChoice = () => Promise<{ backend: string; reason: string } | undefined>;

let backendChoice: BackendChoice | undefined;

/**
 * Sets the {@link BackendChoice} asked before the first adapter request (later calls replace it;
 * it has no effect once the adapter is acquired).
 *
 * @example
 * ```ts
 * import { registerBackendChoice } from "./device.ts";
 * // The default: Deno's first adapter.
 * registerBackendChoice(() => Promise.resolve(undefined));
 * ```
 */
export function registerBackendChoice(choice: BackendChoice): void {
  backendChoice = choice;
}

/**
 * `request()` with the environment variables `vars` set for its duration (then restored), or
 * null when they cannot be set (no --allow-env).
 */
async function withEnv<T>(
  vars: Record<string, string>,
  request: () => Promise<T>,
): Promise<T | null> {
  const before: [string, string | undefined][] = [];
  try {
    for (const [name, value] of Object.entries(vars)) {
      before.push([name, Deno.env.get(name)]);
      Deno.env.set(name, value);
    }
  } catch {
    return null;
  }
  try {
    return await request();
  } finally {
    for (const [name, value] of before.reverse()) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

/**
 * The adapter to use, with its backend and why: see the file header. Mesa's GL driver complains
 * on stderr when `XDG_RUNTIME_DIR` is unset; it is set to the temporary folder for the request
 * when absent (nothing is written there).
 */
async function chooseAdapter(): Promise<
  { adapter: GPUAdapter; backend: string; reason: string } | null
> {
  // Outside Deno (a browser) there is no environment.
  const envAllowed = typeof Deno !== "undefined" &&
    Deno.permissions.querySync({ name: "env" }).state === "granted";
  const request = () => navigator.gpu.requestAdapter(REQUEST);
  const requested = requestedBackend();
  const vars: Record<string, string> = {};
  if (envAllowed && !envVariable("XDG_RUNTIME_DIR")) vars.XDG_RUNTIME_DIR = tmpDir();
  const chosen = envAllowed && requested === undefined ? await backendChoice?.() : undefined;
  if (chosen) vars[BACKEND_VARIABLE] = chosen.backend;
  const adapter = Object.keys(vars).length > 0
    ? await withEnv(vars, request) ?? await request()
    : await request();
  if (!adapter) return null;
  if (requested !== undefined) {
    return { adapter, backend: requested, reason: `${BACKEND_VARIABLE}=${requested}` };
  }
  if (typeof Deno === "undefined") {
    return { adapter, backend: "browser", reason: "the browser's high-performance adapter" };
  }
  if (chosen) return { adapter, ...chosen };
  return {
    adapter,
    backend: "default",
    reason: isFallback(adapter) ? CPU_REASON : "hardware adapter",
  };
}

function isFallback(adapter: GPUAdapter): boolean {
  return Boolean((adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter);
}

function unavailableMessage(what: string): string {
  return [
    `No WebGPU ${what}: navigator.gpu.requestAdapter({ powerPreference: "high-performance" }) ` +
    `returned ${what === "adapter" ? "null" : "an adapter whose device could not be created"} ` +
    `(backend: ${backendName()}).`,
    "To run without a GPU on Debian or Ubuntu, install Mesa's software drivers:",
    "  sudo apt-get install -y mesa-vulkan-drivers libgl1-mesa-dri libegl-mesa0",
    "(lavapipe for Vulkan, llvmpipe for GL); on a GPU machine, install the vendor's Vulkan driver.",
    "DENO_WEBGPU_BACKEND=vulkan or =gl picks a backend explicitly.",
  ].join("\n");
}

async function acquire(): Promise<Gpu> {
  if (typeof navigator === "undefined" || !navigator.gpu) {
    throw new GpuUnavailableError(unavailableMessage("adapter"));
  }
  const chosen = await chooseAdapter();
  if (!chosen) throw new GpuUnavailableError(unavailableMessage("adapter"));
  const { adapter, backend, reason } = chosen;
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const features: GPUFeatureName[] = adapter.features.has("timestamp-query")
    ? ["timestamp-query"]
    : [];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  } catch (error) {
    throw new GpuUnavailableError(`${unavailableMessage("device")}\nCause: ${error}`);
  }
  device.lost.then((info) => {
    if (info.reason !== "destroyed") console.error(`WebGPU device lost: ${info.message}`);
  });
  // Release the device while the runtime still stands, rather than in the process's own teardown
  // (where Mesa's drivers now and then corrupted the heap at exit, 2026-12-03).
  globalThis.addEventListener?.("unload", () => device.destroy());
  const info = adapter.info;
  const summary: AdapterSummary = {
    name: info.description || info.device ||
      [info.vendor, info.architecture].filter(Boolean).join(" ") ||
      "unknown adapter",
    vendor: info.vendor || "unknown",
    isFallback: isFallback(adapter),
    backend,
    reason,
  };
  return { adapter, device, summary };
}

/**
 * Returns the process-wide adapter and device, acquiring them on the first call.
 *
 * @throws {GpuUnavailableError} when no adapter or device is available.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeAdapter, getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * assert.equal(await getGpu(), gpu); // acquired once per process
 * assert.match(describeAdapter(gpu.summary), / \[(fallback|hardware), /);
 * ```
 */
export function getGpu(): Promise<Gpu> {
  if (!pending) {
    pending = acquire();
    pending.catch(() => pending = undefined);
  }
  return pending;
}

/**
 * One line describing the adapter, its backend and why, e.g.
 * `llvmpipe (LLVM 15.0.6, 256 bits) [fallback, gl: DENO_WEBGPU_BACKEND=gl]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeAdapter } from "./device.ts";
 * const summary = {
 *   name: "NVIDIA H200",
 *   vendor: "nvidia",
 *   isFallback: false,
 *   backend: "default",
 *   reason: "hardware adapter",
 * };
 * assert.equal(describeAdapter(summary), "NVIDIA H200 [hardware, default: hardware adapter]");
 * ```
 */
export function describeAdapter(summary: AdapterSummary): string {
  const kind = summary.isFallback ? "fallback" : "hardware";
  return `${summary.name} [${kind}, ${summary.backend}: ${summary.reason}]`;
}
