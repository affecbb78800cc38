/**
 * Buffer creation checked against the device's limits, uploads, and read-backs.
 *
 * Every buffer is labelled; a request above `maxBufferSize` or (for storage buffers)
 * `maxStorageBufferBindingSize` fails before WebGPU sees it, naming the buffer and the limit.
 */
import type { Gpu } from "./device.ts";

/**
 * Thrown when a requested buffer exceeds a device limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferLimitError, checkBufferSize } from "./buffers.ts";
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * const tooBig = gpu.device.limits.maxBufferSize + 4;
 * assert.throws(() => checkBufferSize(gpu, "huge", tooBig), BufferLimitError);
 * assert.equal(new BufferLimitError("too large").exitCode, 2);
 * ```
 */
export class BufferLimitError extends RangeError {
  /** Error name shown in stack traces and messages. */
  override name = "BufferLimitError";
  /** Exit status of a command that stops on this error (the run is too large for the device). */
  readonly exitCode = 2;
}

/** Throws a {@link BufferLimitError} if `byteSize` bytes cannot be one buffer (or storage binding). */
export function checkBufferSize(gpu: Gpu, label: string, byteSize: number, storage = true): void {
  const limits = gpu.device.limits;
  if (!Number.isFinite(byteSize) || byteSize < 0) {
    throw new BufferLimitError(`Buffer "${label}": invalid size ${byteSize} bytes`);
  }
  if (byteSize > limits.maxBufferSize) {
    throw new BufferLimitError(
      `Buffer "${label}" needs ${byteSize} bytes, above the device's maxBufferSize ` +
        `(${limits.maxBufferSize} bytes)`,
    );
  }
  if (storage && byteSize > limits.maxStorageBufferBindingSize) {
    throw new BufferLimitError(
      `Buffer "${label}" needs ${byteSize} bytes, above the device's maxStorageBufferBindingSize ` +
        `(${limits.maxStorageBufferBindingSize} bytes)`,
    );
  }
}

const STORAGE = 0x80; // GPUBufferUsage.STORAGE
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const UNIFORM = 0x40;

/** A zero-filled storage buffer of `byteSize` bytes (rounded up to 4), readable and writable. */
export function createStorage(gpu: Gpu, label: string, byteSize: number): GPUBuffer {
  const size = Math.max(4, Math.ceil(byteSize / 4) * 4);
  checkBufferSize(gpu, label, size);
  return gpu.device.createBuffer({ label, size, usage: STORAGE | COPY_SRC | COPY_DST });
}

/** A storage buffer holding `data` (float32, uint32 or int32 words). */
export function uploadStorage(
  gpu: Gpu,
  label: string,
  data: Float32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Int32Array<ArrayBuffer>,
): GPUBuffer {
  const buffer = createStorage(gpu, label, data.byteLength);
  if (data.byteLength > 0) gpu.device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** A uniform buffer holding `data` (padded to 16 bytes). */
export function uploadUniform(
  gpu: Gpu,
  label: string,
  data: Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer>,
): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  checkBufferSize(gpu, label, size, false);
  const buffer = gpu.device.createBuffer({ label, size, usage: UNIFORM | COPY_DST });
  gpu.device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** Copies `byteSize` bytes at `byteOffset` of `buffer` back to the host. */
export async function readBytes(
  gpu: Gpu,
  buffer: GPUBuffer,
  byteOffset = 0,
  byteSize = buffer.size - byteOffset,
): Promise<ArrayBuffer> {
  const size = Math.ceil(byteSize / 4) * 4;
  const staging = gpu.device.createBuffer({
    label: `${buffer.label} (read-back)`,
    size: Math.max(4, size),
    usage: MAP_READ | COPY_DST,
  });
  const encoder = gpu.device.createCommandEncoder({ label: "read-back" });
  if (size > 0) encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
  gpu.device.queue.submit([encoder.finish()]);
  await staging.mapAsync(1 /* GPUMapMode.READ */);
  const copy = staging.getMappedRange().slice(0, byteSize);
  staging.unmap();
  staging.destroy();
  return copy;
}

/** Reads `count` float32 values starting at element `offset` of `buffer`. */
export async function readF32(
  gpu: Gpu,
  buffer: GPUBuffer,
  offset = 0,
  count = buffer.size / 4 - offset,
): Promise<Float32Array> {
  return new Float32Array(await readBytes(gpu, buffer, offset * 4, count * 4));
}

/** Reads `count` uint32 values starting at element `offset` of `buffer`. */
export async function readU32(
  gpu: Gpu,
  buffer: GPUBuffer,
  offset = 0,
  count = buffer.size / 4 - offset,
): Promise<Uint32Array> {
  return new Uint32Array(await readBytes(gpu, buffer, offset * 4, count * 4));
}
