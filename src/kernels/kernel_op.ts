/**
 * What every kernel wrapper returns, a {@link KernelOp} (one pre-built dispatch), how ops are
 * encoded and run ({@link encodeOps}, {@link runOps}), and the wrappers' shared helper: operand size
 * checks.
 *
 * Each `.wgsl` family declares one fixed table of bindings; an entry point uses a subset of it, so
 * bind groups name their binding numbers (`bindGroup` in src/gpu/pipelines.ts takes a record).
 */
import type { Gpu } from "../gpu/device.ts";
import { dispatch } from "../gpu/pipelines.ts";
import { checkInteger } from "../check_value.ts";

/** Invocations per workgroup of the one-dimensional kernels (a power of two). */
export const WORKGROUP = 64;

/**
 * Loop iterations one invocation may run on Mesa's CPU adapters (llvmpipe, lavapipe): past it
 * every loop of the invocation stops, silently (nested loops share the count).
 */
export const LOOP_LIMIT = 65_535;

/** One kernel invocation whose pipeline, bind group and workgroup count are fixed at creation. */
export interface KernelOp {
  /** Pipeline label, for profiling and errors. */
  readonly label: string;
  /** Dispatches {@link encode} records (1 for most ops). */
  readonly dispatches: number;
  /** Records the dispatch into `pass`. */
  encode(pass: GPUComputePassEncoder): void;
  /** Destroys the buffers the op created (its uniforms), not the ones it was given. */
  destroy(): void;
}

/** A {@link KernelOp} dispatching `workgroups` workgroups of `pipeline` with `group`. */
export function kernelOp(
  gpu: Gpu,
  label: string,
  pipeline: GPUComputePipeline,
  group: GPUBindGroup,
  workgroups: number,
  owned: readonly GPUBuffer[] = [],
): KernelOp {
  return {
    label,
    dispatches: 1,
    encode: (pass) => dispatch(gpu, pass, pipeline, group, workgroups),
    destroy: () => owned.forEach((buffer) => buffer.destroy()),
  };
}

/** Throws a RangeError unless `buffer` holds at least `floats` 32-bit words. */
export function requireWords(label: string, buffer: GPUBuffer, floats: number): void {
  if (buffer.size < floats * 4) {
    throw new RangeError(
      `Operand ${label} (buffer "${buffer.label}"): needs ${floats} 32-bit words, ` +
        `the buffer holds ${buffer.size / 4}`,
    );
  }
}

/** Throws a RangeError unless `value` is a positive integer. */
export function requirePositive(label: string, value: number): void {
  checkInteger(label, value, 1);
}

/** Records `ops` in order into one compute pass of `encoder`. */
export function encodeOps(
  encoder: GPUCommandEncoder,
  ops: readonly KernelOp[],
  label = "kernels",
): void {
  const pass = encoder.beginComputePass({ label });
  for (const op of ops) op.encode(pass);
  pass.end();
}

/** Encodes `ops` in one pass, submits them, and waits until the queue is done. */
export async function runOps(gpu: Gpu, ops: readonly KernelOp[], label = "kernels"): Promise<void> {
  const encoder = gpu.device.createCommandEncoder({ label });
  encodeOps(encoder, ops, label);
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
}
