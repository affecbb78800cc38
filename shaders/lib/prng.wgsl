// prng.wgsl — Philox4x32-10 counter-based PRNG (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011; the generator of Random123, cuRAND and PyTorch's CUDA backend) and the
// conversions of its u32 outputs to floats. A library: plain functions, no bindings; include it
// before the kernel that calls it. Bit-identical twin on the host: src/toy/rng.ts.
//
// Why Philox: a random number is a pure function of a 128-bit counter and a 64-bit key, so every
// decision can be addressed by (seed, step, row, node, draw) with no state and no per-step upload;
// it passes TestU01's BigCrush with 10 rounds and has published known-answer vectors (checked in
// tests/toy_rng_test.ts), so it needs no ad-hoc mixing of five inputs into a hash. WGSL has no
// 64-bit integers: the high half of each 32×32 product is assembled from 16-bit pieces, exactly
// as the host twin does. Cost (~150 integer ops per 4 outputs) is negligible at toy sizes.
//
// API:
//   fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32>
//   fn prng_unit(u: u32) -> f32          // top 24 bits → [0, 1), exact
//   fn prng_unit_open0(u: u32) -> f32    // top 24 bits → (0, 1], exact
//   fn prng_normal(u1: u32, u2: u32) -> f32  // Box–Muller standard normal (float32 transcendentals)

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (high, low) 32-bit halves of the 64-bit product a·b.
fn prng_mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xFFFFu;
  let a1 = a >> 16u;
  let b0 = b & 0xFFFFu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

// Philox4x32 with 10 rounds: 128 random bits for counter `ctr` under key `key`.
fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) {
      k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    let p0 = prng_mulhilo(PHILOX_M0, c.x);
    let p1 = prng_mulhilo(PHILOX_M1, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}

// The top 24 bits of u as a float in [0, 1); exact in float32.
fn prng_unit(u: u32) -> f32 {
  return f32(u >> 8u) * (1.0 / 16777216.0);
}

// The top 24 bits of u, plus one, as a float in (0, 1]; exact in float32 (safe for log).
fn prng_unit_open0(u: u32) -> f32 {
  return f32((u >> 8u) + 1u) * (1.0 / 16777216.0);
}

// A standard normal from two u32 draws by Box–Muller: sqrt(−2 ln u1)·cos(2π u2), |z| ≤ 5.77.
fn prng_normal(u1: u32, u2: u32) -> f32 {
  let radius = sqrt(-2.0 * log(prng_unit_open0(u1)));
  return radius * cos(6.283185307179586 * prng_unit(u2));
}
