// TopK and BatchTopK selection of activations, and the state a TopK-family SAE keeps between
// steps (the BatchTopK threshold and the dead-latent counters); the float64 definition is
// src/reference/topk_reference.ts. One workgroup per model; models whose mode is 0 (standard) are
// left alone.
//
//   topk_select  acts [M][B][S] (ReLU outputs) in place:
//                TopK (mode 1): each row keeps its k largest (ties: the lower latent);
//                BatchTopK (mode 2): the model's batch keeps its min(k·B, B·S) largest (ties: the
//                lower flat index b·S + j). The K-th largest value is found by a binary search
//                over its bits (non-negative floats order as their bit patterns), 31 rounds of a
//                workgroup count; ties at it are kept in flat-index order from per-thread
//                contiguous chunks and an exclusive prefix count.
//   topk_state   after the step, for every model still training (status 0):
//                BatchTopK: θ ← (1 − lr)·θ + lr·min{acts > 0} (unchanged when none is positive);
//                TopK family: steps since latent j fired ← 0 if any row's acts[b][j] > 0, else +1.
//
// Shapes: M models, B rows, S latents (uniform TopKDims). Loop iterations per invocation:
// topk_select at most ceil(B / WG)·S·S (TopK) or 32·ceil(B·S / WG) + WG + ceil(B·S / WG)
// (BatchTopK); topk_state at most ceil(B·S / WG) + ceil(S / WG)·B.
//
// Bindings (group 0):
//   0 dims    uniform TopKDims { models, batch, d_sae }
//   1 spec    storage read  [M] TopKSpec { mode, k, threshold_lr (f32 bits), _pad }
//   2 acts    storage rw    [M][B][S] f32
//   3 state   storage rw    [M][1 + S] u32: θ (f32 bits), then the steps since each latent fired
//   4 status  storage read  [M] u32: 0 while the model trains
//
// Dispatch: M workgroups of WG (a power of two); linear workgroup id wid.x + wid.y · nwg.x.

struct TopKDims {
  models: u32,
  batch: u32,
  d_sae: u32,
}

struct TopKSpec {
  mode: u32,
  k: u32,
  threshold_lr: f32,
  pad: u32,
}

const MODE_TOPK: u32 = 1u;
const MODE_BATCHTOPK: u32 = 2u;

@group(0) @binding(0) var<uniform> dims: TopKDims;
@group(0) @binding(1) var<storage, read> spec: array<TopKSpec>;
@group(0) @binding(2) var<storage, read_write> acts: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
@group(0) @binding(4) var<storage, read> status: array<u32>;

override WG: u32 = 64u;

var<workgroup> counts: array<u32, WG>;
var<workgroup> mins: array<f32, WG>;

/** Sums counts[0..WG) into counts[0] (every invocation calls it; barriers inside). */
fn reduce_counts(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { counts[lid] += counts[lid + s]; }
    workgroupBarrier();
  }
}

/** The least of mins[0..WG) into mins[0]. */
fn reduce_mins(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { mins[lid] = min(mins[lid], mins[lid + s]); }
    workgroupBarrier();
  }
}

/** Row b of model m: each latent kept when fewer than k latents rank above it. */
fn topk_row(base: u32, k: u32) {
  let S = dims.d_sae;
  for (var j = 0u; j < S; j++) {
    let v = acts[base + j];
    var above = 0u;
    for (var i = 0u; i < S; i++) {
      let u = acts[base + i];
      if (u > v || (u == v && i < j)) { above += 1u; }
    }
    // Zeroing now leaves every later verdict as it was: the row's k top-ranked values are never
    // zeroed and rank above every value that must go; a zeroed value can only tie a later 0.
    if (above >= k) { acts[base + j] = 0.0; }
  }
}

/** The model's batch at acts[base ..] (n values) keeps its K largest. */
fn batchtopk(base: u32, n: u32, K: u32, lid: u32) {
  // The K-th largest value's bits: the largest pattern t with #{v >= t} >= K.
  var bits = 0u;
  for (var bit = 30; bit >= 0; bit--) {
    let candidate = bits | (1u << u32(bit));
    var c = 0u;
    for (var i = lid; i < n; i += WG) {
      if (bitcast<u32>(acts[base + i]) >= candidate) { c += 1u; }
    }
    counts[lid] = c;
    reduce_counts(lid);
    let total = counts[0];
    workgroupBarrier();
    if (total >= K) { bits = candidate; }
  }
  // Ties at the K-th value: keep the first (K − #{v > t}) in flat order. Thread lid owns the
  // contiguous chunk [lid·C, (lid + 1)·C).
  let chunk = (n + WG - 1u) / WG;
  let start = min(lid * chunk, n);
  let end = min(start + chunk, n);
  var greater = 0u;
  var ties = 0u;
  for (var i = start; i < end; i++) {
    let b = bitcast<u32>(acts[base + i]);
    if (b > bits) { greater += 1u; }
    if (b == bits) { ties += 1u; }
  }
  counts[lid] = greater;
  reduce_counts(lid);
  let quota = K - counts[0];
  workgroupBarrier();
  counts[lid] = ties;
  workgroupBarrier();
  var before = 0u; // ties in the chunks of lower threads
  for (var t = 0u; t < lid; t++) { before += counts[t]; }
  for (var i = start; i < end; i++) {
    let b = bitcast<u32>(acts[base + i]);
    var keep = b > bits;
    if (b == bits) {
      keep = before < quota;
      before += 1u;
    }
    if (!keep) { acts[base + i] = 0.0; }
  }
}

@compute @workgroup_size(WG)
fn topk_select(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let m = wid.x + wid.y * nwg.x;
  if (m >= dims.models) { return; } // uniform per workgroup
  let sp = spec[m];
  let n = dims.batch * dims.d_sae;
  let base = m * n;
  if (sp.mode == MODE_TOPK) {
    for (var b = lid; b < dims.batch; b += WG) { topk_row(base + b * dims.d_sae, sp.k); }
  } else if (sp.mode == MODE_BATCHTOPK) {
    batchtopk(base, n, min(sp.k * dims.batch, n), lid);
  }
}

@compute @workgroup_size(WG)
fn topk_state(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let m = wid.x + wid.y * nwg.x;
  if (m >= dims.models) { return; }
  let sp = spec[m];
  if (sp.mode == 0u || status[m] != 0u) { return; } // uniform per workgroup
  let S = dims.d_sae;
  let n = dims.batch * S;
  let base = m * n;
  let sb = m * (1u + S);
  var low = 3.4028234e38;
  for (var i = lid; i < n; i += WG) {
    let v = acts[base + i];
    if (v > 0.0) { low = min(low, v); }
  }
  mins[lid] = low;
  reduce_mins(lid);
  if (lid == 0u && sp.mode == MODE_BATCHTOPK && mins[0] < 3.4028234e38) {
    let theta = bitcast<f32>(state[sb]);
    state[sb] = bitcast<u32>((1.0 - sp.threshold_lr) * theta + sp.threshold_lr * mins[0]);
  }
  for (var j = lid; j < S; j += WG) {
    var fired = false;
    for (var b = 0u; b < dims.batch; b++) {
      if (acts[base + b * S + j] > 0.0) {
        fired = true;
        break;
      }
    }
    state[sb + 1u + j] = select(state[sb + 1u + j] + 1u, 0u, fired);
  }
}
