/**
 * Philox4x32-10, the counter-based generator of Random123 (Salmon et al., SC 2011), in exact u32
 * arithmetic (`Math.imul`, 16-bit split products for the high word), bit-identical to
 * `shaders/lib/prng.wgsl`; the float conversions the GPU uses; and {@link Rng}, a seeded sequential
 * stream of float64 uniforms and normals built on it, for host-side randomness (embedding init).
 */
import { checkInteger } from "../check_value.ts";

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;
const TWO_POW_MINUS_24 = 1 / 16777216;

/** High 32 bits of the 64-bit product of two u32 values (the WGSL code splits the same way). */
export function mulhi32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * Philox4x32 with 10 rounds: maps a 128-bit counter and a 64-bit key to 128 random bits.
 *
 * @param ctr four u32 counter words.
 * @param key two u32 key words.
 * @returns four u32 output words.
 * @example
 * ```ts
 * import { philox4x32 } from "./rng.ts";
 * philox4x32([0, 0, 0, 0], [0, 0]); // [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
 * ```
 */
export function philox4x32(
  ctr: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  let c0 = ctr[0] >>> 0, c1 = ctr[1] >>> 0, c2 = ctr[2] >>> 0, c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0), lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2), lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}

/** `prng_unit` of prng.wgsl: the top 24 bits of `u` as a float in [0, 1), exact in float32. */
export function unitFloat(u: number): number {
  return (u >>> 8) * TWO_POW_MINUS_24;
}

/** `prng_unit_open0` of prng.wgsl: the top 24 bits of `u` plus one, scaled into (0, 1]. */
export function unitFloatOpen0(u: number): number {
  return ((u >>> 8) + 1) * TWO_POW_MINUS_24;
}

/**
 * `prng_normal` of prng.wgsl: a standard normal by Box–Muller from two u32 draws, evaluated with
 * every operation rounded to float32. The GPU's `log`, `cos` and `sqrt` are not correctly rounded
 * (WGSL leaves their accuracy to the implementation), so results agree to a few float32 ulps of
 * the magnitude, not bit for bit.
 */
export function normalFloat32(u1: number, u2: number): number {
  const f = Math.fround;
  const radius = f(Math.sqrt(f(-2 * f(Math.log(unitFloatOpen0(u1))))));
  const angle = f(f(2 * Math.PI) * unitFloat(u2));
  return f(radius * f(Math.cos(angle)));
}

/**
 * The largest seed: seeds are unsigned 32-bit integers everywhere (command lines and library).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSeed, MAX_SEED, Rng } from "./rng.ts";
 * assert.equal(MAX_SEED, 2 ** 32 - 1);
 * assert.equal(checkSeed("seed", MAX_SEED), MAX_SEED);
 * assert.throws(() => new Rng(MAX_SEED + 1), RangeError); // refused, never wrapped to 0
 * ```
 */
export const MAX_SEED = 0xffffffff;

/**
 * `seed` if it is an integer from 0 to {@link MAX_SEED}; otherwise a RangeError naming `field`.
 * Nothing wraps silently: two distinct seeds never give the same stream.
 *
 * @example
 * ```ts
 * import { checkSeed } from "./rng.ts";
 * checkSeed("seed", 7); // 7
 * ```
 */
export function checkSeed(field: string, seed: number): number {
  return checkInteger(field, seed, 0, MAX_SEED);
}

/** Key word 1 of the host stream of {@link Rng} (key word 0 is the seed). */
const HOST_STREAM_DOMAIN = 0x484f5354; // "HOST"

/**
 * A seeded, reproducible stream of float64 uniforms and standard normals: block `i` of the stream
 * is `philox4x32([i mod 2³², ⌊i / 2³²⌋, 0, 0], [seed, "HOST"])`, so streams of different seeds are independent.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(42);
 * const u = rng.uniform(); // in [0, 1)
 * const z = rng.normal(); // standard normal
 * ```
 */
export class Rng {
  /** The seed, an unsigned 32-bit integer. */
  readonly seed: number;
  #block = 0;
  #words: number[] = [];
  #spareNormal: number | null = null;

  /**
   * Starts a deterministic random stream from a seed.
   *
   * @param seed an integer from 0 to {@link MAX_SEED} (anything else is refused, never wrapped).
   */
  constructor(seed: number) {
    this.seed = checkSeed("seed", seed);
  }

  /** The next raw u32 of the stream. */
  nextU32(): number {
    if (this.#words.length === 0) {
      const lo = this.#block % 4294967296, hi = Math.floor(this.#block / 4294967296);
      this.#words = philox4x32([lo, hi, 0, 0], [this.seed, HOST_STREAM_DOMAIN]).reverse();
      this.#block++;
    }
    return this.#words.pop()!;
  }

  /** A uniform float64 in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A standard normal float64 (Box–Muller; the second value of each pair is kept for next call). */
  normal(): number {
    if (this.#spareNormal !== null) {
      const z = this.#spareNormal;
      this.#spareNormal = null;
      return z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.#spareNormal = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  }

  /** `count` standard normals as a new Float64Array. */
  normals(count: number): Float64Array {
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) out[i] = this.normal();
    return out;
  }
}
