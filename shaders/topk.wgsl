// TopK and BatchTopK selection of activations, and the state a TopK-family SAE keeps between
// steps (the BatchTopK threshold and the dead-latent counters); the float64 definition is
// src/reference/topk_reference.ts. One workgroup per model; models whose mode is 0 (standard) are
// left alone.
//
//   topk_select  acts [M][B][S] (ReLU outputs) in place:
//                TopK (mode 1): each row keeps its k largest (ties: the lower latent);
//                BatchTopK (mode 2): the model's batch keeps its K = ⌊k·B⌋ largest (the host
//                puts K in the spec's k; ties: the lower flat index b·S + j). The K-th largest value is found by a binary search
//                over its bits (non-negative floats order as their bit patterns), 31 rounds of a
//                workgroup count; ties at it are kept in flat-index order from per-thread
//                contiguous chunks and an exclusive prefix count.
//   topk_state   after the step, for every model still training (status 0):
//                BatchTopK: θ ← (1 − lr)·θ + lr·min{acts > 0} (unchanged when none is positive);
//                TopK family: steps since latent j fired ← 0 if any row's acts[b][j] > 0, else +1.
//   aux_forward  one invocation per (model, row), for models with an auxiliary loss: the dead
//                latents (state counter > dead_window) before this step's update; the row's top
//                min(k_aux, dead) dead pre-activations (pre = (x − [apply]·b_dec)·W_enc + b_enc,
//                no ReLU; ties: the lower latent) decode the detached residual x − x̂
//                (x̂ = acts·W_dec + b_dec): e = aux·W_dec + b_dec − (x − x̂); writes the row's
//                loss c·Σ e² / B, dr = 2c·e / B and aux to the aux scratch (c = coefficient ·
//                min(dead / k_aux, 1)), and adds dr·W_dec[j]ᵀ to g_pre at the selected latents;
//                nothing when no latent is dead.
//   aux_grad     one invocation per (model, r ∈ [0, S], d): grads W_dec[r][d] += Σ_b aux[b][r]·
//                dr[b][d] (r < S), grads b_dec[d] += Σ_b dr[b][d] (r = S); the (S, 0) invocation
//                writes the loss record's aux slot and adds it to the total (aux 0 and nothing
//                else when no latent is dead).
//
// Shapes: M models, B rows, S latents, D = d_in, P floats per model's parameters (uniform
// TopKDims). Loop iterations per invocation: topk_select at most ceil(B / WG)·S·S (TopK) or
// 32·ceil(B·S / WG) + WG + ceil(B·S / WG) (BatchTopK); topk_state at most ceil(B·S / WG) +
// ceil(S / WG)·B; aux_forward at most S + S·D + S·S + 2·D·S + S·D; aux_grad B.
//
// Bindings (group 0):
//   0 dims    uniform TopKDims
//   1 spec    storage read  [M] TopKSpec
//   2 acts    storage rw    [M][B][S] f32 (the kept activations after topk_select)
//   3 latent_state storage rw    [M][1 + S] u32: θ (f32 bits), then the steps since each latent fired
//   4 status  storage read  [M] u32: 0 while the model trains
//   5 params  storage read  [M][P] f32 (src/sae/layout.ts: W_enc [D][S], b_enc, W_dec [S][D], b_dec)
//   6 x       storage read  [M][B][D] f32 inputs
//   7 grad_pre storage rw   [M][B][S] f32 ∂loss/∂pre
//   8 aux     storage rw    [M][B][AUX_ROW] f32 scratch: dr [D], aux acts [S], pre [S], loss [1]
//   9 grads   storage rw    [M][P] f32
//  10 losses  storage rw    [M][loss_words] f32 loss records
//
// Dispatch: topk_select, topk_state: M workgroups of WG (a power of two); aux_forward: ceil(M·B /
// WG) workgroups; aux_grad: ceil(M·(S + 1)·D / WG). Linear workgroup id wid.x + wid.y · nwg.x.

struct TopKDims {
  models: u32,
  batch: u32,
  d_sae: u32,
  d_in: u32,
  p: u32,          // floats per model's parameters
  off_w_enc: u32,
  off_b_enc: u32,
  off_w_dec: u32,
  off_b_dec: u32,
  loss_words: u32,
  loss_total: u32, // slot of the total in a loss record
  loss_aux: u32,   // slot of the auxiliary loss
}

struct TopKSpec {
  mode: u32,
  k: u32,               // TopK: per row; BatchTopK: K = ⌊k·B⌋ over the batch
  threshold_lr: f32,
  aux_coefficient: f32, // 0: no auxiliary loss
  k_aux: u32,
  dead_window: u32,     // dead: more than this many steps without firing
  apply_b_dec: u32,     // 1: encode x − b_dec
  pad: u32,
}

const MODE_TOPK: u32 = 1u;
const MODE_BATCHTOPK: u32 = 2u;

@group(0) @binding(0) var<uniform> dims: TopKDims;
@group(0) @binding(1) var<storage, read> spec: array<TopKSpec>;
@group(0) @binding(2) var<storage, read_write> acts: array<f32>;
@group(0) @binding(3) var<storage, read_write> latent_state: array<u32>;
@group(0) @binding(4) var<storage, read> status: array<u32>;
@group(0) @binding(5) var<storage, read> params: array<f32>;
@group(0) @binding(6) var<storage, read> x: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad_pre: array<f32>;
@group(0) @binding(8) var<storage, read_write> aux: array<f32>;
@group(0) @binding(9) var<storage, read_write> grads: array<f32>;
@group(0) @binding(10) var<storage, read_write> losses: array<f32>;

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
    batchtopk(base, n, sp.k, lid); // BatchTopK's k word holds the count kept, ⌊k·B⌋ ≤ B·S
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
    let theta = bitcast<f32>(latent_state[sb]);
    latent_state[sb] = bitcast<u32>((1.0 - sp.threshold_lr) * theta + sp.threshold_lr * mins[0]);
  }
  for (var j = lid; j < S; j += WG) {
    var fired = false;
    for (var b = 0u; b < dims.batch; b++) {
      if (acts[base + b * S + j] > 0.0) {
        fired = true;
        break;
      }
    }
    latent_state[sb + 1u + j] = select(latent_state[sb + 1u + j] + 1u, 0u, fired);
  }
}

/** Marks a latent the auxiliary loss does not use (no pre-activation reaches it). */
const NONE: f32 = -3.4028234e38;

/** Floats of one row's aux scratch: dr [D], aux acts [S], pre [S], loss. */
fn aux_row() -> u32 { return dims.d_in + 2u * dims.d_sae + 1u; }

/** How many latents of model m are dead (counter past the window). */
fn dead_count(m: u32, window: u32) -> u32 {
  let sb = m * (1u + dims.d_sae);
  var n = 0u;
  for (var j = 0u; j < dims.d_sae; j++) {
    if (latent_state[sb + 1u + j] > window) { n += 1u; }
  }
  return n;
}

@compute @workgroup_size(WG)
fn aux_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  let B = dims.batch;
  let S = dims.d_sae;
  let D = dims.d_in;
  if (id >= dims.models * B) { return; }
  let m = id / B;
  let b = id % B;
  let sp = spec[m];
  if (sp.mode == 0u || sp.aux_coefficient == 0.0) { return; }
  let ab = id * aux_row(); // this row's scratch: dr, aux acts, pre, loss
  let a_acts = ab + D;
  let a_pre = ab + D + S;
  let pb = m * dims.p;
  let sb = m * (1u + S);
  let xb = id * D;
  let n_dead = dead_count(m, sp.dead_window);
  if (n_dead == 0u) { return; } // aux_grad sees no dead latent either and reads nothing
  let keep = min(sp.k_aux, n_dead);
  let c = sp.aux_coefficient * min(f32(n_dead) / f32(sp.k_aux), 1.0);
  let shift = select(0.0, 1.0, sp.apply_b_dec != 0u);
  // The dead latents' pre-activations (the live ones are never chosen).
  for (var j = 0u; j < S; j++) {
    var pre = NONE;
    if (latent_state[sb + 1u + j] > sp.dead_window) {
      pre = params[pb + dims.off_b_enc + j];
      for (var d = 0u; d < D; d++) {
        let xin = x[xb + d] - shift * params[pb + dims.off_b_dec + d];
        pre += xin * params[pb + dims.off_w_enc + d * S + j];
      }
    }
    aux[a_pre + j] = pre;
  }
  // The top `keep` of them (ties: the lower latent); the others are marked NONE in the aux acts
  // slot while the ranks are read from the pre slot, then NONE moves to the pre slot, so that
  // "pre slot != NONE" says "selected" even where the selected pre-activation is 0.
  for (var j = 0u; j < S; j++) {
    var v = NONE;
    if (latent_state[sb + 1u + j] > sp.dead_window) {
      let pj = aux[a_pre + j];
      var above = 0u;
      for (var i = 0u; i < S; i++) {
        let pi = aux[a_pre + i];
        let dead_i = latent_state[sb + 1u + i] > sp.dead_window;
        if (dead_i && (pi > pj || (pi == pj && i < j))) { above += 1u; }
      }
      if (above < keep) { v = pj; }
    }
    aux[a_acts + j] = v;
  }
  for (var j = 0u; j < S; j++) {
    if (aux[a_acts + j] == NONE) {
      aux[a_acts + j] = 0.0;
      aux[a_pre + j] = NONE;
    }
  }
  // e = aux·W_dec + b_dec − (x − x̂), x̂ = acts·W_dec + b_dec; dr = 2c·e / B.
  var sq = 0.0;
  for (var d = 0u; d < D; d++) {
    let bd = params[pb + dims.off_b_dec + d];
    var recon = bd;
    var full = bd;
    for (var j = 0u; j < S; j++) {
      let w = params[pb + dims.off_w_dec + j * D + d];
      recon += aux[a_acts + j] * w;
      full += acts[id * S + j] * w;
    }
    let e = recon - (x[xb + d] - full);
    sq += e * e;
    aux[ab + d] = 2.0 * c * e / f32(B);
  }
  aux[ab + aux_row() - 1u] = c * sq / f32(B);
  // ∂aux/∂pre_j = dr · W_dec[j] at the selected latents, added to g_pre.
  for (var j = 0u; j < S; j++) {
    if (aux[a_pre + j] == NONE) { continue; } // not selected
    var g = 0.0;
    for (var d = 0u; d < D; d++) { g += aux[ab + d] * params[pb + dims.off_w_dec + j * D + d]; }
    grad_pre[id * S + j] += g;
  }
}

@compute @workgroup_size(WG)
fn aux_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  let B = dims.batch;
  let S = dims.d_sae;
  let D = dims.d_in;
  if (id >= dims.models * (S + 1u) * D) { return; }
  let m = id / ((S + 1u) * D);
  let r = (id / D) % (S + 1u);
  let d = id % D;
  let sp = spec[m];
  if (sp.mode == 0u || sp.aux_coefficient == 0.0) { return; }
  let lb = m * dims.loss_words;
  if (dead_count(m, sp.dead_window) == 0u) {
    if (r == S && d == 0u) { losses[lb + dims.loss_aux] = 0.0; }
    return;
  }
  let rows = m * B * aux_row();
  var acc = 0.0;
  if (r < S) {
    for (var b = 0u; b < B; b++) {
      let ab = rows + b * aux_row();
      acc += aux[ab + D + r] * aux[ab + d];
    }
    grads[m * dims.p + dims.off_w_dec + r * D + d] += acc;
    return;
  }
  for (var b = 0u; b < B; b++) { acc += aux[rows + b * aux_row() + d]; }
  grads[m * dims.p + dims.off_b_dec + d] += acc;
  if (d == 0u) {
    var loss = 0.0;
    for (var b = 0u; b < B; b++) { loss += aux[rows + b * aux_row() + aux_row() - 1u]; }
    losses[lb + dims.loss_aux] = loss;
    losses[lb + dims.loss_total] += loss;
  }
}
