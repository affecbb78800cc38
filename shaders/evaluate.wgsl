// evaluate.wgsl — the synthetic-SAE evaluation on held-out rows: for each of M SAEs and each row of
// a chunk, sample the row from the model's tree, embed it, encode, decode every prefix, and write
// the row's statistics; then reduce each statistic over the chunk's rows to a (sum, centred sum of
// squares) pair per model. The host merges the chunks' pairs in float64 (Chan et al.'s parallel
// variance for the x columns). Include after lib/prng.wgsl, the generated tree layout
// (TREE_FLAT_FILE, src/toy/tree_flat.ts), lib/tree_sample.wgsl and the generated GROUP_* offsets
// (WORLD_FILE, src/sae/world.ts).
// Host side and definitions: src/metrics/evaluate.ts, src/metrics/evaluate_cpu.ts.
//
// Shapes (uniform `run`): M models, D = d_in, S = d_sae, E decoded ends per model, F feature
// columns (the widest tree), C = capacity (row stride of `rows`), n = rows of this chunk (≤ C).
// P = 2·D·S + S + D floats of parameters per model. K = E + D + S + 4 statistic columns.
// Columns of `rows` per model (COLS = K + S + D + F), each [C] floats:
//   statistics  [0, E) ‖x − x̂_e‖²   [E, E+D) x_d   [E+D, E+D+S) latent j active (0/1)
//               E+D+S  active latents   +1 non-zero true features   +2 ‖x̂‖/‖x‖ (0 when x = 0)
//               +3  1 when x ≠ 0
//   work        [K, K+S) acts   [K+S, K+S+D) running reconstruction   [K+S+D, COLS) features
//
// Bindings (group 0; each entry point uses only those listed with it):
//   0 run         uniform  EvalRun                                          rows_pass, reduce_pass
//   1 tree_nodes  storage  u32  [M][GROUP_WORDS] headers (GROUP_* from src/sae/world.ts), then
//                          the trees (lib/tree_sample.wgsl layout), then each model's embedding
//                          [n features][D] as f32 bits (src/sae/world.ts packWorld)   rows_pass
//   2 params      storage  f32  [M][P]  W_enc [D][S], b_enc [S], W_dec [S][D], b_dec [D]  rows_pass
//   3 model_info  storage  u32  [M][1 + E]  (apply b_dec to input, end_0 .. end_{E−1}); ends
//                          ascending, the last = S (repeated to pad)                    rows_pass
//   4 rows        storage  f32  [M][COLS][C]                  written by rows_pass, read by reduce
//   5 partials    storage  f32  [chunks][M][K][2]  (Σ over the chunk's rows, Σ (v − chunk mean)²)
//
// Entry points, over a folded (x, y) grid (linear workgroup id wid.x + wid.y·nwg.x):
//   rows_pass:   ROW_WG-thread workgroups, one thread per (m, r), M·n threads, bounds-checked.
//                Row r of the chunk is held-out row g = chunk_start + r: row g mod rows_per_step of
//                step step_base + ⌊g / rows_per_step⌋ of the model's data stream.
//   reduce_pass: one RED_WG-thread workgroup per (m, k), M·K workgroups: strided sums in a fixed
//                order, then a tree reduction in workgroup memory (deterministic, no atomics).

struct EvalRun {
  models: u32,
  d_in: u32,
  d_sae: u32,
  n_ends: u32,
  n_features: u32,
  capacity: u32,
  chunk_rows: u32,
  chunk_start: u32,
  chunk_index: u32,
  step_base: u32,
  rows_per_step: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> run: EvalRun;
@group(0) @binding(1) var<storage, read> tree_nodes: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> model_info: array<u32>;
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

override ROW_WG: u32 = 64u;
override RED_WG: u32 = 256u; // a power of two

var<workgroup> red: array<f32, RED_WG>;

fn stat_cols() -> u32 {
  return run.n_ends + run.d_in + run.d_sae + 4u;
}

fn all_cols() -> u32 {
  return stat_cols() + run.d_sae + run.d_in + run.n_features;
}

// Index of row r of column k of model m in `rows`.
fn at(m: u32, k: u32, r: u32) -> u32 {
  return (m * all_cols() + k) * run.capacity + r;
}

@compute @workgroup_size(ROW_WG)
fn rows_pass(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = (wid.x + wid.y * nwg.x) * ROW_WG + lid.x;
  let n = run.chunk_rows;
  if (i >= run.models * n) {
    return;
  }
  let m = i / n;
  let r = i % n;
  let D = run.d_in;
  let S = run.d_sae;
  let E = run.n_ends;
  let K = stat_cols();
  let c_x = E;
  let c_fire = E + D;
  let c_acts = K;
  let c_recon = K + S;
  let c_feat = K + S + D;

  // Sample the row's features.
  let g = run.chunk_start + r;
  let step = run.step_base + g / run.rows_per_step;
  let row = g % run.rows_per_step;
  let tree_base = tree_nodes[m * GROUP_WORDS + GROUP_TREE_BASE];
  let seed = tree_nodes[m * GROUP_WORDS + GROUP_SEED];
  let nf = tree_nodes[m * GROUP_WORDS + GROUP_N_FEATURES];
  let emb = tree_nodes[m * GROUP_WORDS + GROUP_EMBEDDING_BASE];
  var true_l0 = 0.0;
  for (var f = 0u; f < run.n_features; f++) {
    var v = 0.0;
    if (f < nf) {
      v = tree_feature_value(tree_base, f, seed, step, row);
    }
    if (v != 0.0) {
      true_l0 += 1.0;
    }
    rows[at(m, c_feat + f, r)] = v;
  }

  // x = features @ E.
  var xx = 0.0;
  for (var d = 0u; d < D; d++) {
    var acc = 0.0;
    for (var f = 0u; f < nf; f++) {
      acc += rows[at(m, c_feat + f, r)] * bitcast<f32>(tree_nodes[emb + f * D + d]);
    }
    rows[at(m, c_x + d, r)] = acc;
    xx += acc * acc;
  }

  // Encode: acts = ReLU((x − b_dec·apply) @ W_enc + b_enc).
  let p = m * (2u * D * S + S + D);
  let b_enc = p + D * S;
  let w_dec = b_enc + S;
  let b_dec = w_dec + S * D;
  let info = m * (1u + E);
  let apply = select(0.0, 1.0, model_info[info] != 0u);
  var l0 = 0.0;
  for (var j = 0u; j < S; j++) {
    var pre = params[b_enc + j];
    for (var d = 0u; d < D; d++) {
      pre += (rows[at(m, c_x + d, r)] - apply * params[b_dec + d]) * params[p + d * S + j];
    }
    let fire = select(0.0, 1.0, pre > 0.0);
    rows[at(m, c_acts + j, r)] = max(pre, 0.0);
    rows[at(m, c_fire + j, r)] = fire;
    l0 += fire;
  }

  // Decode each end in turn: recon += Σ_{j ∈ [previous end, end)} acts_j W_dec[j].
  for (var d = 0u; d < D; d++) {
    rows[at(m, c_recon + d, r)] = params[b_dec + d];
  }
  var start = 0u;
  var rr = 0.0;
  for (var e = 0u; e < E; e++) {
    let end = model_info[info + 1u + e];
    var err = 0.0;
    rr = 0.0;
    for (var d = 0u; d < D; d++) {
      var v = rows[at(m, c_recon + d, r)];
      for (var j = start; j < end; j++) {
        v += rows[at(m, c_acts + j, r)] * params[w_dec + j * D + d];
      }
      rows[at(m, c_recon + d, r)] = v;
      let diff = rows[at(m, c_x + d, r)] - v;
      err += diff * diff;
      rr += v * v;
    }
    rows[at(m, e, r)] = err;
    start = end;
  }

  var ratio = 0.0;
  var nonzero = 0.0;
  if (xx > 0.0) {
    ratio = sqrt(rr) / sqrt(xx);
    nonzero = 1.0;
  }
  rows[at(m, E + D + S, r)] = l0;
  rows[at(m, E + D + S + 1u, r)] = true_l0;
  rows[at(m, E + D + S + 2u, r)] = ratio;
  rows[at(m, E + D + S + 3u, r)] = nonzero;
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
  let n = run.chunk_rows;
  let t = lid.x;
  let base = at(m, k, 0u);

  var s = 0.0;
  for (var r = t; r < n; r += RED_WG) {
    s += rows[base + r];
  }
  red[t] = s;
  tree_reduce(t);
  let total = red[0];
  workgroupBarrier(); // every thread has read red[0] before it is overwritten
  let mean = total / f32(n);

  var q = 0.0;
  for (var r = t; r < n; r += RED_WG) {
    let dv = rows[base + r] - mean;
    q += dv * dv;
  }
  red[t] = q;
  tree_reduce(t);
  if (t == 0u) {
    let out = ((run.chunk_index * run.models + m) * K + k) * 2u;
    partials[out] = total;
    partials[out + 1u] = red[0];
  }
}
