// evaluate.wgsl — the synthetic-SAE evaluation on held-out rows, in latent space. The rows of a
// world (a tree and the evaluation's data seed) are patterns of feature values with a weight:
// either the distinct activity patterns of a tree without magnitude noise, each weighted by how
// many held-out rows have it (the host counts them from mask_pass's bits), or, for a tree with
// magnitude noise, every held-out row with weight 1 (sample_pass writes them). Every input is
// x = f·E with sparse f, so one row of one SAE costs O(S·F) through the model's Gram quantities
// (gram_pass) instead of O(D·S): rows_pass writes each row's weighted statistics, reduce_pass sums
// them per model; the host merges the chunks' sums in float64.
// Include after lib/prng.wgsl, the generated tree layout (TREE_FLAT_FILE, src/toy/tree_flat.ts),
// lib/tree_sample.wgsl and the generated GROUP_* offsets (WORLD_FILE, src/sae/world.ts).
// Host side and definitions: src/metrics/evaluate.ts, src/metrics/evaluate_cpu.ts.
//
// Shapes (uniform `run`): M models, D = d_in, S = d_sae, E decoded ends per model, F feature
// columns (the widest tree), W worlds (the first `sampled_worlds` have magnitude noise), C slots
// per world in a chunk (row stride of `patterns` and `stats`), n = slots used in this chunk (≤ C).
// P = 2·D·S + S + D floats of parameters per model. Q probes per model (the scorecard's firing
// counts, src/metrics/scorecard.ts). K = E + S + F + 5 + Q statistic columns:
//   [0, E) ‖x − x̂_e‖²   [E, E+S) latent j active (0/1)   [E+S, E+S+F) f (the feature values)
//   E+S+F  active latents   +1 non-zero true features   +2 ‖x‖²   +3 ‖x̂‖/‖x‖ (0 when x = 0)
//   +4  1 when x ≠ 0   [E+S+F+5, K) probe q: [latent fires] · [f_a ≠ 0] · [f_b ≠ 0]
// each multiplied by the row's weight. Gram quantities of a model, GW = 2FS + F² + S² + 2S + F + 1
// floats, blocks in this order (gram_* functions give the offsets):
//   A [F][S] = E·W_enc   B [F][S] = E·W_decᵀ   H [F][F] = E·Eᵀ   G [S][S] = W_dec·W_decᵀ
//   bw [S] = b_dec·W_enc   c [S] = W_dec·b_dec   e [F] = E·b_dec   bb = ‖b_dec‖²
// so, with r = x − b_dec: pre_j = b_enc_j + (f·A)_j − apply·bw_j, ‖x‖² = f·H·f,
// ‖r‖² = f·H·f − 2 f·e + bb, r·W_dec[j] = (f·B)_j − c_j,
// ‖r − Σ_{j<end} a_j W_dec[j]‖² = ‖r‖² − 2 Σ a_j r·W_dec[j] + Σ_{j,k} a_j a_k G_jk,
// ‖x̂‖² = bb + 2 Σ a_j c_j + Σ_{j,k} a_j a_k G_jk.
//
// Bindings (group 0; each entry point uses only those listed with it):
//   0 run         uniform  EvalRun                                                 all
//   1 tree_nodes  storage  u32  [W][GROUP_WORDS] headers (GROUP_* from src/sae/world.ts), then
//                          the trees (lib/tree_sample.wgsl layout), ... (packWorld)   mask, sample
//   2 params      storage  f32  [M][P]  W_enc [D][S], b_enc [S], W_dec [S][D], b_dec [D]  gram, rows
//   3 model_info  storage  u32  [M][INFO_HEAD + E]  (world, apply b_dec to input, the JumpReLU
//                          threshold θ (f32 bits; 0 for ReLU), TopK's k per row (0: none),
//                          end_0 .. end_{E−1}); ends ascending, the last = S (repeated to
//                          pad)                                                     gram, rows
//   4 embeddings  storage  f32  [M][F][D]  each model's E, rows past its tree's width 0   gram
//   5 gram        storage  f32  [M][GW]                       written by gram_pass, read by rows
//   6 patterns    storage  f32  [W][C][F]  host-written (merged worlds) or sample_pass's  rows
//   7 weights     storage  f32  [W][C]     0 for unused slots (host-written)              rows
//   8 stats       storage  f32  [M][K][C]                     written by rows, read by reduce
//   9 partials    storage  f32  [chunks][M][K]  Σ over the chunk's slots                 reduce
//  10 masks       storage  u32  [W − sampled_worlds][C][MW]  bit f of word f/32: f ≠ 0    mask
//  11 latents     storage  u32  [M][C][2·S]  scratch: the active latents (index, a bits)  rows
//  12 probes      storage  u32  [M][Q][3]  (latent, a, b), sorted by latent, ALWAYS_LATENT
//                          (no latent condition) last; padded with (ALWAYS_LATENT, 0, 0)  rows
//
// Entry points, over a folded (x, y) grid (linear workgroup id wid.x + wid.y·nwg.x), ROW_WG-thread
// workgroups unless stated, bounds-checked:
//   mask_pass:   one thread per (merged world, slot), (W − sampled_worlds)·n threads: held-out row
//                first_row + slot's activity bits.
//   sample_pass: one thread per (sampled world, slot), sampled_worlds·n threads: the row's values
//                (0 past total_rows).
//   gram_pass:   one thread per (m, Gram entry), M·GW threads: one D-long dot product each.
//   rows_pass:   one thread per (m, slot), M·n threads.
//   reduce_pass: one RED_WG-thread workgroup per (m, k), M·K workgroups: strided sums in a fixed
//                order, then a tree reduction in workgroup memory (deterministic, no atomics).
// Held-out row g is row g mod rows_per_step of step step_base + ⌊g / rows_per_step⌋ of the world's
// stream.

struct EvalRun {
  models: u32,
  d_in: u32,
  d_sae: u32,
  n_ends: u32,
  n_features: u32,
  worlds: u32,
  sampled_worlds: u32,
  capacity: u32,
  chunk_rows: u32,
  first_row: u32,
  total_rows: u32,
  chunk_index: u32,
  step_base: u32,
  rows_per_step: u32,
  mask_words: u32,
  n_probes: u32,
}

@group(0) @binding(0) var<uniform> run: EvalRun;
@group(0) @binding(1) var<storage, read> tree_nodes: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> model_info: array<u32>;
@group(0) @binding(4) var<storage, read> embeddings: array<f32>;
@group(0) @binding(5) var<storage, read_write> gram: array<f32>;
@group(0) @binding(6) var<storage, read_write> patterns: array<f32>;
@group(0) @binding(7) var<storage, read> weights: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;
@group(0) @binding(9) var<storage, read_write> partials: array<f32>;
@group(0) @binding(10) var<storage, read_write> masks: array<u32>;
@group(0) @binding(11) var<storage, read_write> latents: array<u32>;
@group(0) @binding(12) var<storage, read> probes: array<u32>;

const ALWAYS_LATENT: u32 = 0xffffffffu;
/** Words of model_info before the ends. */
const INFO_HEAD: u32 = 4u;
/** Marks a listed latent that TopK drops (high bit of its index word). */
const DROPPED: u32 = 0x80000000u;

override ROW_WG: u32 = 64u;
override RED_WG: u32 = 256u; // a power of two

var<workgroup> red: array<f32, RED_WG>;

fn stat_cols() -> u32 {
  return run.n_ends + run.d_sae + run.n_features + 5u + run.n_probes;
}

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * ROW_WG + lid.x;
}

// The world's stream address of held-out row g: (tree base, seed, features, step, row).
struct HeldOutRow {
  tree_base: u32,
  seed: u32,
  n_features: u32,
  step: u32,
  row: u32,
}

fn held_out_row(world: u32, g: u32) -> HeldOutRow {
  let header = world * GROUP_WORDS;
  return HeldOutRow(
    tree_nodes[header + GROUP_TREE_BASE],
    tree_nodes[header + GROUP_SEED],
    tree_nodes[header + GROUP_N_FEATURES],
    run.step_base + g / run.rows_per_step,
    g % run.rows_per_step,
  );
}

@compute @workgroup_size(ROW_WG)
fn mask_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = linear_id(wid, nwg, lid);
  let n = run.chunk_rows;
  if (i >= (run.worlds - run.sampled_worlds) * n) {
    return;
  }
  let slot = i % n;
  let h = held_out_row(run.sampled_worlds + i / n, run.first_row + slot);
  let out = ((i / n) * run.capacity + slot) * run.mask_words;
  for (var word = 0u; word < run.mask_words; word++) {
    var bits = 0u;
    let bits_in_word = min(32u, h.n_features - min(h.n_features, word * 32u));
    for (var b = 0u; b < bits_in_word; b++) {
      if (tree_feature_value(h.tree_base, word * 32u + b, h.seed, h.step, h.row) != 0.0) {
        bits |= 1u << b;
      }
    }
    masks[out + word] = bits;
  }
}

@compute @workgroup_size(ROW_WG)
fn sample_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = linear_id(wid, nwg, lid);
  let n = run.chunk_rows;
  if (i >= run.sampled_worlds * n) {
    return;
  }
  let world = i / n;
  let slot = i % n;
  let g = run.first_row + slot;
  let h = held_out_row(world, g);
  let out = (world * run.capacity + slot) * run.n_features;
  for (var f = 0u; f < run.n_features; f++) {
    var v = 0.0;
    if (g < run.total_rows && f < h.n_features) {
      v = tree_feature_value(h.tree_base, f, h.seed, h.step, h.row);
    }
    patterns[out + f] = v;
  }
}

// Offsets of the Gram blocks of model m (layout in the header).
fn gram_base(m: u32) -> u32 {
  let F = run.n_features;
  let S = run.d_sae;
  return m * (2u * F * S + F * F + S * S + 2u * S + F + 1u);
}
fn gram_a(m: u32) -> u32 {
  return gram_base(m);
}
fn gram_b(m: u32) -> u32 {
  return gram_a(m) + run.n_features * run.d_sae;
}
fn gram_h(m: u32) -> u32 {
  return gram_b(m) + run.n_features * run.d_sae;
}
fn gram_g(m: u32) -> u32 {
  return gram_h(m) + run.n_features * run.n_features;
}
fn gram_bw(m: u32) -> u32 {
  return gram_g(m) + run.d_sae * run.d_sae;
}
fn gram_c(m: u32) -> u32 {
  return gram_bw(m) + run.d_sae;
}
fn gram_e(m: u32) -> u32 {
  return gram_c(m) + run.d_sae;
}
fn gram_bb(m: u32) -> u32 {
  return gram_e(m) + run.n_features;
}

// Σ_d embeddings[ea + d] · params[pb + d·ps].
fn dot_embedding_param(ea: u32, pb: u32, ps: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < run.d_in; d++) {
    s += embeddings[ea + d] * params[pb + d * ps];
  }
  return s;
}

// Σ_d params[pa + d·sa] · params[pb + d·sb].
fn dot_params(pa: u32, sa: u32, pb: u32, sb: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < run.d_in; d++) {
    s += params[pa + d * sa] * params[pb + d * sb];
  }
  return s;
}

fn dot_embeddings(ea: u32, eb: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < run.d_in; d++) {
    s += embeddings[ea + d] * embeddings[eb + d];
  }
  return s;
}

// Gram entry k (0 ≤ k < GW, in block order) of model m.
fn gram_entry(m: u32, k: u32) -> f32 {
  let D = run.d_in;
  let S = run.d_sae;
  let F = run.n_features;
  let emb = m * F * D;
  let w_enc = m * (2u * D * S + S + D);
  let w_dec = w_enc + D * S + S;
  let b_dec = w_dec + S * D;
  var at = k;
  if (at < F * S) {
    return dot_embedding_param(emb + (at / S) * D, w_enc + at % S, S);
  }
  at -= F * S;
  if (at < F * S) {
    return dot_embedding_param(emb + (at / S) * D, w_dec + (at % S) * D, 1u);
  }
  at -= F * S;
  if (at < F * F) {
    return dot_embeddings(emb + (at / F) * D, emb + (at % F) * D);
  }
  at -= F * F;
  if (at < S * S) {
    return dot_params(w_dec + (at / S) * D, 1u, w_dec + (at % S) * D, 1u);
  }
  at -= S * S;
  if (at < S) {
    return dot_params(b_dec, 1u, w_enc + at, S);
  }
  at -= S;
  if (at < S) {
    return dot_params(w_dec + at * D, 1u, b_dec, 1u);
  }
  at -= S;
  if (at < F) {
    return dot_embedding_param(emb + at * D, b_dec, 1u);
  }
  return dot_params(b_dec, 1u, b_dec, 1u);
}

@compute @workgroup_size(ROW_WG)
fn gram_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = linear_id(wid, nwg, lid);
  let per_model = gram_base(1u);
  if (i >= run.models * per_model) {
    return;
  }
  gram[i] = gram_entry(i / per_model, i % per_model);
}

// Index of slot u of column k of model m in `stats`.
fn stat_at(m: u32, k: u32, u: u32) -> u32 {
  return (m * stat_cols() + k) * run.capacity + u;
}

// (f·M)_j for a [F][S] Gram block at `block`, over the row's non-zero features.
fn feature_times(pat: u32, block: u32, j: u32) -> f32 {
  var s = 0.0;
  for (var f = 0u; f < run.n_features; f++) {
    let v = patterns[pat + f];
    if (v != 0.0) {
      s += v * gram[block + f * run.d_sae + j];
    }
  }
  return s;
}

// f·H·f, f·e and the number of non-zero features of the row.
struct RowInput {
  xx: f32,
  xe: f32,
  nnz: u32,
}

fn row_input(m: u32, pat: u32) -> RowInput {
  let F = run.n_features;
  let h = gram_h(m);
  var out = RowInput(0.0, 0.0, 0u);
  for (var f = 0u; f < F; f++) {
    let v = patterns[pat + f];
    if (v == 0.0) {
      continue;
    }
    out.nnz += 1u;
    out.xe += v * gram[gram_e(m) + f];
    var hv = 0.0;
    for (var k = 0u; k < F; k++) {
      hv += patterns[pat + k] * gram[h + f * F + k];
    }
    out.xx += v * hv;
  }
  return out;
}

@compute @workgroup_size(ROW_WG)
fn rows_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = linear_id(wid, nwg, lid);
  let n = run.chunk_rows;
  if (i >= run.models * n) {
    return;
  }
  let m = i / n;
  let u = i % n;
  let S = run.d_sae;
  let E = run.n_ends;
  let F = run.n_features;
  let info = m * (INFO_HEAD + E);
  let world = model_info[info];
  let apply = select(0.0, 1.0, model_info[info + 1u] != 0u);
  let weight = weights[world * run.capacity + u];
  let pat = (world * run.capacity + u) * F;
  let b_enc = m * (2u * run.d_in * S + S + run.d_in) + run.d_in * S;
  let list = (m * run.capacity + u) * 2u * S;

  // The input: ‖x‖², ‖x − b_dec‖², the feature columns.
  let input = row_input(m, pat);
  let bb = gram[gram_bb(m)];
  for (var f = 0u; f < F; f++) {
    stats[stat_at(m, E + S + f, u)] = weight * patterns[pat + f];
  }

  // Encode: a_j = b_enc_j + (f·A)_j − apply·bw_j where that is above the threshold θ (ReLU:
  // θ = 0; BatchTopK's JumpReLU: its θ); list the active latents in order.
  let theta = bitcast<f32>(model_info[info + 2u]);
  var l0 = 0u;
  for (var j = 0u; j < S; j++) {
    let pre = params[b_enc + j] + feature_times(pat, gram_a(m), j) - apply * gram[gram_bw(m) + j];
    stats[stat_at(m, E + j, u)] = select(0.0, weight, pre > theta);
    if (pre > theta) {
      latents[list + 2u * l0] = j;
      latents[list + 2u * l0 + 1u] = bitcast<u32>(pre);
      l0 += 1u;
    }
  }
  let top_k = model_info[info + 3u];
  if (top_k > 0u && l0 > top_k) { l0 = keep_top_k(m, u, list, l0, top_k); }

  // Decode each end in turn: add the active latents below it to the running error.
  var err = input.xx - 2.0 * input.xe + bb; // ‖x − b_dec‖²
  var quad = 0.0; // Σ_{j,k} a_j a_k G_jk over the latents added so far
  var lin = 0.0; // Σ a_j c_j
  var e = 0u;
  let g = gram_g(m);
  for (var t = 0u; t < l0; t++) {
    let j = latents[list + 2u * t];
    let a = bitcast<f32>(latents[list + 2u * t + 1u]);
    for (; e < E && j >= model_info[info + INFO_HEAD + e]; e++) {
      stats[stat_at(m, e, u)] = weight * max(err, 0.0);
    }
    var cross = 0.0;
    for (var q = 0u; q < t; q++) {
      cross += bitcast<f32>(latents[list + 2u * q + 1u]) * gram[g + j * S + latents[list + 2u * q]];
    }
    let c = gram[gram_c(m) + j];
    let added = a * (a * gram[g + j * S + j] + 2.0 * cross);
    err += added - 2.0 * a * (feature_times(pat, gram_b(m), j) - c);
    quad += added;
    lin += a * c;
  }
  for (; e < E; e++) {
    stats[stat_at(m, e, u)] = weight * max(err, 0.0);
  }

  var ratio = 0.0;
  var nonzero = 0.0;
  if (input.xx > 0.0) {
    ratio = sqrt(max(bb + 2.0 * lin + quad, 0.0)) / sqrt(input.xx);
    nonzero = 1.0;
  }
  let k = E + S + F;
  stats[stat_at(m, k, u)] = weight * f32(l0);
  stats[stat_at(m, k + 1u, u)] = weight * f32(input.nnz);
  stats[stat_at(m, k + 2u, u)] = weight * input.xx;
  stats[stat_at(m, k + 3u, u)] = weight * ratio;
  stats[stat_at(m, k + 4u, u)] = weight * nonzero;
  count_probes(m, u, pat, list, l0);
}

// TopK at inference: keeps the k largest of the l0 listed latents (ties: the lower latent, which
// is listed first), compacting the list and clearing the dropped ones' activity; returns k. The
// ranks are all taken before anything moves (DROPPED marks the index words meanwhile).
fn keep_top_k(m: u32, u: u32, list: u32, l0: u32, k: u32) -> u32 {
  for (var t = 0u; t < l0; t++) {
    let a = bitcast<f32>(latents[list + 2u * t + 1u]);
    var above = 0u;
    for (var q = 0u; q < l0; q++) {
      let b = bitcast<f32>(latents[list + 2u * q + 1u]);
      if (b > a || (b == a && q < t)) { above += 1u; }
    }
    if (above >= k) { latents[list + 2u * t] |= DROPPED; }
  }
  var kept = 0u;
  for (var t = 0u; t < l0; t++) {
    let j = latents[list + 2u * t];
    if ((j & DROPPED) != 0u) {
      stats[stat_at(m, run.n_ends + (j & ~DROPPED), u)] = 0.0;
      continue;
    }
    latents[list + 2u * kept] = j;
    latents[list + 2u * kept + 1u] = latents[list + 2u * t + 1u];
    kept += 1u;
  }
  return kept;
}

// The probes of model m on slot u: a merge walk of the (sorted) probes with the ascending list of
// active latents, O(Q + l0).
fn count_probes(m: u32, u: u32, pat: u32, list: u32, l0: u32) {
  let first = run.n_ends + run.d_sae + run.n_features + 5u;
  let weight = weights[model_info[m * (INFO_HEAD + run.n_ends)] * run.capacity + u];
  var t = 0u;
  for (var q = 0u; q < run.n_probes; q++) {
    let at = (m * run.n_probes + q) * 3u;
    let latent = probes[at];
    for (; t < l0 && latents[list + 2u * t] < latent; t++) {}
    let fires = latent == ALWAYS_LATENT || (t < l0 && latents[list + 2u * t] == latent);
    let on = patterns[pat + probes[at + 1u]] != 0.0 && patterns[pat + probes[at + 2u]] != 0.0;
    stats[stat_at(m, first + q, u)] = select(0.0, weight, fires && on);
  }
}

// Sums red[0..RED_WG) into red[0]; every thread of the workgroup must call it.
fn tree_reduce(t: u32) {
  workgroupBarrier();
  for (var stride = RED_WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) {
      red[t] += red[t + stride];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(RED_WG)
fn reduce_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let w = wid.x + wid.y * nwg.x;
  let K = stat_cols();
  if (w >= run.models * K) {
    return;
  }
  let m = w / K;
  let k = w % K;
  let t = lid.x;
  let base = stat_at(m, k, 0u);
  var s = 0.0;
  for (var u = t; u < run.chunk_rows; u += RED_WG) {
    s += stats[base + u];
  }
  red[t] = s;
  tree_reduce(t);
  if (t == 0u) {
    partials[(run.chunk_index * run.models + m) * K + k] = red[0];
  }
}
