/**
 * The safetensors file format: an 8-byte little-endian u64 header length N, N bytes of JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`
 * (padded with spaces so the data starts at a multiple of 8), then the tensors' bytes, row-major
 * little-endian, with offsets relative to the start of the data.
 *
 * Writing supports float32 only; tensors are laid out contiguously in the order given. Reading
 * accepts any standard dtype as raw bytes and checks what the reference implementation checks:
 * the header parses, every entry has a known dtype, an integer shape and offsets whose length is
 * `product(shape) × dtype size`, and the offsets tile the data exactly (no gap, no overlap).
 */

/** Bytes per element of each safetensors dtype. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** A float32 tensor to write. */
export interface F32Tensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** Row-major values; length = product of `shape`. */
  data: Float32Array;
}

/** A tensor as read: its dtype, shape and raw little-endian bytes (a copy, 8-byte aligned). */
export interface RawTensor {
  /** A key of {@link DTYPE_SIZES}, e.g. `F32`. */
  dtype: string;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Row-major little-endian element bytes. */
  bytes: Uint8Array;
}

/** A decoded file: tensors in file order and the `__metadata__` strings. */
export interface SafetensorsFile {
  /** Tensors by name, in header order. */
  tensors: Map<string, RawTensor>;
  /** The header's `__metadata__` (empty when absent). */
  metadata: Record<string, string>;
}

/** Thrown for a malformed or inconsistent safetensors file; the message names the tensor. */
export class SafetensorsError extends Error {
  /** The error's name. */
  override name = "SafetensorsError";
}

const MAX_HEADER = 100_000_000; // The reference implementation's limit.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Encodes float32 tensors (in the order given) and string metadata as safetensors bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, tensorToF32 } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ b: { shape: [2], data: new Float32Array([1, 2]) } });
 * const file = decodeSafetensors(bytes);
 * assert.equal(tensorToF32("b", file.tensors.get("b")!)[1], 2);
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, F32Tensor> | Map<string, F32Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        throw new SafetensorsError(
          `Invalid metadata "${key}": safetensors metadata values must be strings, ` +
            `got ${typeof value}`,
        );
      }
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, { shape, data }] of entries) {
    if (name === "__metadata__") {
      throw new SafetensorsError(`Invalid tensor name "__metadata__": the name is reserved`);
    }
    if (!(data instanceof Float32Array)) {
      throw new SafetensorsError(`Invalid tensor "${name}": expected a Float32Array`);
    }
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": shape must be non-negative integers, got [${shape}]`,
      );
    }
    if (elementCount(shape) !== data.length) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": shape [${shape}] holds ${elementCount(shape)} values, ` +
          `data has ${data.length}`,
      );
    }
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const [, { data }] of entries) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (LITTLE_ENDIAN) {
      out.set(bytes, at);
    } else {
      for (let i = 0; i < bytes.length; i += 4) {
        for (let j = 0; j < 4; j++) out[at + i + j] = bytes[i + 3 - j]!;
      }
    }
    at += data.byteLength;
  }
  return out;
}

/** Decodes safetensors bytes, checking dtypes, shapes and offsets (see the module comment). */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `Invalid safetensors: ${bytes.length} bytes, too short for a header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    throw new SafetensorsError(
      `Invalid safetensors: header length ${headerLen64} exceeds the file ` +
        `(${bytes.length - 8} bytes after the length) or the 100 MB limit`,
    );
  }
  const headerLen = Number(headerLen64);
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(8, 8 + headerLen),
    );
    if (!text.startsWith("{")) throw new Error("the header does not start with '{'");
    header = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(
      `Invalid safetensors header: ${error instanceof Error ? error.message : error}`,
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SafetensorsError("Invalid safetensors header: expected a JSON object");
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number; dtype: string; shape: number[] }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        throw new SafetensorsError("Invalid __metadata__: expected an object of strings");
      }
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") {
          throw new SafetensorsError(`Invalid __metadata__ "${k}": expected a string, got ${v}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) {
      throw new SafetensorsError(`Invalid tensor "${name}": expected an object`);
    }
    const dtype = e.dtype;
    if (typeof dtype !== "string" || !(dtype in DTYPE_SIZES)) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": unknown dtype ${JSON.stringify(dtype)} ` +
          `(allowed: ${Object.keys(DTYPE_SIZES).join(", ")})`,
      );
    }
    const shape = e.shape;
    if (
      !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": shape must be an array of non-negative integers, ` +
          `got ${JSON.stringify(shape)}`,
      );
    }
    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": data_offsets must be [begin, end] with 0 ≤ begin ≤ end, ` +
          `got ${JSON.stringify(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    const expected = elementCount(shape) * DTYPE_SIZES[dtype]!;
    if (end - begin !== expected) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": ${dtype} shape [${shape}] needs ${expected} bytes, ` +
          `data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    if (end > dataLen) {
      throw new SafetensorsError(
        `Invalid tensor "${name}": data_offsets end ${end} is past the data (${dataLen} bytes)`,
      );
    }
    spans.push({ name, begin, end, dtype, shape: shape as number[] });
  }
  // The tensors must tile the data: sorted by begin, each starts where the previous ended.
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const s of sorted) {
    if (s.begin !== cursor) {
      throw new SafetensorsError(
        `Invalid tensor "${s.name}": data_offsets begin ${s.begin}, expected ${cursor} ` +
          `(tensors must be contiguous, without gaps or overlaps)`,
      );
    }
    cursor = s.end;
  }
  if (cursor !== dataLen) {
    throw new SafetensorsError(
      `Invalid safetensors: the tensors cover ${cursor} bytes of data, the file has ${dataLen}`,
    );
  }
  const tensors = new Map<string, RawTensor>();
  for (const s of spans) {
    tensors.set(s.name, {
      dtype: s.dtype,
      shape: s.shape,
      bytes: bytes.slice(dataStart + s.begin, dataStart + s.end),
    });
  }
  return { tensors, metadata };
}

/**
 * The values of a float32 tensor, bit for bit (NaN payloads included). Throws a
 * {@link SafetensorsError} naming the tensor if its dtype is not F32.
 */
export function tensorToF32(name: string, tensor: RawTensor): Float32Array {
  if (tensor.dtype !== "F32") {
    throw new SafetensorsError(`Invalid tensor "${name}": expected dtype F32, got ${tensor.dtype}`);
  }
  const copy = tensor.bytes.slice();
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < copy.length; i += 4) {
      [copy[i], copy[i + 1], copy[i + 2], copy[i + 3]] = [
        copy[i + 3]!,
        copy[i + 2]!,
        copy[i + 1]!,
        copy[i]!,
      ];
    }
  }
  return new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4);
}
