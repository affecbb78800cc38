/**
 * Compiles WGSL into compute pipelines, once per (files, entry point, constants), and reports
 * shader errors as `shaders/file.wgsl:LINE:COL: message`.
 *
 * A kernel's source may be several `.wgsl` files concatenated (a shared library such as the PRNG
 * first, then the kernel): each file is imported as text by its TypeScript wrapper
 * (`import src from "../../shaders/x.wgsl" with { type: "text" }`), so loading works from any
 * working directory and when `mod.ts` is imported from elsewhere.
 */
import type { Gpu } from "./device.ts";

/** One WGSL file: its repository path (for error messages) and its text. */
export interface ShaderFile {
  path: string;
  code: string;
}

/** What is compiled: the pipeline cache key is derived from all of it. */
export interface KernelSpec {
  /** Label for the pipeline, shown in WebGPU errors. */
  label: string;
  /** Files concatenated in order into one shader module. */
  files: readonly ShaderFile[];
  /** The `@compute` entry point. */
  entryPoint: string;
  /** Values for `override` declarations (workgroup sizes, compile-time shapes). */
  constants?: Record<string, number>;
}

/** Thrown when WGSL fails to compile or a pipeline fails validation. */
export class ShaderCompileError extends Error {
  /** Error name shown in stack traces and messages. */
  override name = "ShaderCompileError";
}

const caches = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();
const modules = new WeakMap<GPUDevice, Map<string, Promise<GPUShaderModule>>>();

function sourceOf(files: readonly ShaderFile[]): { code: string; starts: number[] } {
  const starts: number[] = [];
  let line = 1;
  const parts: string[] = [];
  for (const file of files) {
    starts.push(line);
    const text = file.code.endsWith("\n") ? file.code : file.code + "\n";
    parts.push(text);
    line += text.split("\n").length - 1;
  }
  return { code: parts.join(""), starts };
}

/** Maps a line of the concatenated source back to `file:line`. */
function locate(files: readonly ShaderFile[], starts: number[], line: number): string {
  for (let i = files.length - 1; i >= 0; i--) {
    if (line >= starts[i]!) return `${files[i]!.path}:${line - starts[i]! + 1}`;
  }
  return `line ${line}`;
}

async function compileModule(gpu: Gpu, files: readonly ShaderFile[]): Promise<GPUShaderModule> {
  const { code, starts } = sourceOf(files);
  const names = files.map((f) => f.path).join(" + ");
  gpu.device.pushErrorScope("validation");
  const module = gpu.device.createShaderModule({ label: names, code });
  const info = await module.getCompilationInfo();
  const scopeError = await gpu.device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length > 0) {
    const lines = errors.map((m) => {
      const where = `${locate(files, starts, m.lineNum)}:${m.linePos}`;
      const first = m.message.trim().split("\n")[0];
      return `${where}: ${first}`;
    });
    throw new ShaderCompileError(`WGSL compile error in ${names}:\n${lines.join("\n")}`);
  }
  if (scopeError) throw new ShaderCompileError(`WGSL error in ${names}: ${scopeError.message}`);
  return module;
}

function moduleFor(gpu: Gpu, files: readonly ShaderFile[]): Promise<GPUShaderModule> {
  let cache = modules.get(gpu.device);
  if (!cache) modules.set(gpu.device, cache = new Map());
  const key = files.map((f) => f.path + "\u0000" + f.code).join("\u0001");
  let module = cache.get(key);
  if (!module) {
    module = compileModule(gpu, files);
    cache.set(key, module);
    module.catch(() => cache.delete(key));
  }
  return module;
}

async function build(gpu: Gpu, spec: KernelSpec): Promise<GPUComputePipeline> {
  const module = await moduleFor(gpu, spec.files);
  try {
    return await gpu.device.createComputePipelineAsync({
      label: spec.label,
      layout: "auto",
      compute: { module, entryPoint: spec.entryPoint, constants: spec.constants ?? {} },
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ShaderCompileError(
      `Cannot create pipeline ${spec.label} (${spec.files.map((f) => f.path).join(" + ")}, ` +
        `entry point ${spec.entryPoint}): ${message}`,
    );
  }
}

/**
 * 64-bit FNV-1a hash of a shader's full text (two 32-bit lanes with different offsets), as hex:
 * the pipeline cache key names each file's content by it, so sources that differ anywhere get
 * different pipelines (the module cache keys by the text itself).
 */
export function sourceHash(text: string): string {
  let a = 0x811c9dc5, b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/** Returns the compute pipeline for `spec`, compiling it on first use and caching it per device. */
export function getPipeline(gpu: Gpu, spec: KernelSpec): Promise<GPUComputePipeline> {
  let cache = caches.get(gpu.device);
  if (!cache) caches.set(gpu.device, cache = new Map());
  const constants = Object.entries(spec.constants ?? {}).sort(([a], [b]) => a < b ? -1 : 1);
  const key = JSON.stringify([
    spec.files.map((f) => [f.path, sourceHash(f.code)]),
    spec.entryPoint,
    constants,
  ]);
  let pipeline = cache.get(key);
  if (!pipeline) {
    pipeline = build(gpu, spec);
    cache.set(key, pipeline);
    pipeline.catch(() => cache.delete(key));
  }
  return pipeline;
}

/** A buffer bound whole, or a byte range of one. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/**
 * The bindings of one bind group by `@binding` number: an array (`bindings[i]` at `@binding(i)`,
 * holes and `undefined` skipped) or a record `{ [binding]: buffer }`. An entry point's auto layout
 * holds only the bindings it uses, so a kernel family's entry points bind sparse subsets.
 */
export type Bindings =
  | readonly (Binding | undefined)[]
  | Readonly<Record<number, Binding | undefined>>;

/** Creates a bind group for group 0 of `pipeline` from `bindings` (dense or sparse). */
export function bindGroup(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  bindings: Bindings,
  label = pipeline.label,
): GPUBindGroup {
  const entries: GPUBindGroupEntry[] = [];
  for (const [at, b] of Object.entries(bindings)) {
    if (b === undefined) continue;
    entries.push({ binding: Number(at), resource: b instanceof GPUBuffer ? { buffer: b } : b });
  }
  return gpu.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
}

/**
 * Splits `workgroups` into an (x, y) grid within `maxComputeWorkgroupsPerDimension`; kernels
 * recover the linear index as `wid.x + wid.y * nwg.x` and must skip indices past the count.
 */
export function workgroupGrid(gpu: Gpu, workgroups: number): [number, number] {
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= max) return [Math.max(1, workgroups), 1];
  const y = Math.ceil(workgroups / max);
  if (y > max) {
    throw new RangeError(
      `Cannot dispatch ${workgroups} workgroups: more than maxComputeWorkgroupsPerDimension² ` +
        `(${max}²)`,
    );
  }
  return [Math.ceil(workgroups / y), y];
}

/** Records one compute dispatch of `pipeline` with `group` into `pass`. */
export function dispatch(
  gpu: Gpu,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  group: GPUBindGroup,
  workgroups: number,
): void {
  const [x, y] = workgroupGrid(gpu, workgroups);
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(x, y);
}
