// train_fused.wgsl: K complete training steps of M small SAEs in a few dispatches.
//
// Because every input is x = f @ E (f: the tree's sparse feature values, E: the toy model's
// embedding, no bias), each batch row is handled in *latent space*: with the per-step Gram
// quantities of the parameters (W_dec W_decᵀ, W_dec Eᵀ, E W_enc, E Eᵀ and b_dec's products) a row
// costs O((d_sae + n_features)²) instead of O(d_in · d_sae), and the gradients are rebuilt in
// d_in-space once per step from row statistics (Σ_b c a aᵀ, Σ_b c a fᵀ, Σ_b f dpreᵀ, ...).
// Same loss, same gradients as the CPU reference (src/reference/sae_reference.ts) up to float32
// rounding; see src/sae/fused_step.ts for the derivation summary.
//
// Entry points (dispatched in this order for K steps):
//   sample  : one thread per (k, group, row): the batch features of steps counter+k, once per data
//             group (shared by every model of the group: common random numbers);
//   compact : one thread per (k, group): merges identical rows in place (row, multiplicity), so
//             the models visit each distinct row once (DEDUP: trees without magnitude noise);
//   train   : one workgroup per model (WG threads), looping over the K steps:
//             phase 0  Gram quantities of the parameters            (threads over entries)
//             phase A  per row: encode, every term's loss, dL/da     (threads over rows)
//             phase C  row statistics                               (threads over entries)
//             phase G  gradient of every parameter, norm            (threads over parameters)
//             phase D  clip and Adam (+ decoder normalisation)      (threads over parameters)
//   advance : one thread: counter += K.
// Nothing is read back or uploaded per step. Included after shaders/lib/prng.wgsl,
// shaders/lib/tree_sample.wgsl (reads `tree_nodes`) and shaders/lib/model_table.wgsl.
//
// Shapes (overrides): BATCH rows, D_IN, D_SAE <= MAX_LATENTS, N_FEAT <= MAX_FEATURES (the most
// read-out features of any group), T_MAX loss terms (the most of any model), WG threads per model.
// P = 2 D_IN D_SAE + D_SAE + D_IN.
// Bindings:
//   0 params   [M][P]          f32 rw  W_enc [D_IN][D_SAE], b_enc, W_dec [D_SAE][D_IN], b_dec
//   1 opt      [M][3][P]       f32 rw  gradient, Adam first moment, Adam second moment
//   2 models   [M]             ModelInfo (shaders/lib/model_table.wgsl)
//   3 tree_nodes               u32 r   groups [G][4] = (tree base, seed, n features, embedding
//                                      base), trees, embeddings [n][D_IN] (f32 bits)
//   4 losses   [M][LOSS_WORDS] f32 rw  the latest step's loss record
//   5 state    [M][2] + 1      u32 rw  per model (steps done, status: 0 or the 1-based step that
//                                      diverged), then the data step counter
//   6 scratch  [chunk][S]      f32 rw  per-model Gram quantities, row values and statistics
//   7 features [K][G] blocks of 1 + BATCH (N_FEAT + 1) f32 rw: distinct-row count, then rows
//                                      (N_FEAT values and the row's multiplicity)
//   8 run      uniform Run
// Dispatch: sample: ceil(K G BATCH / 64) workgroups; compact: ceil(K G / 8) (small groups spread
// the serial scans over the cores); train: one workgroup per model of the chunk
// [first_model, first_model + num_models); advance: 1. Linear workgroup id = wid.x + wid.y nwg.x.

override WG: u32 = 64u;
override BATCH: u32 = 128u;
override D_IN: u32 = 50u;
override D_SAE: u32 = 4u;
override N_FEAT: u32 = 4u;
override T_MAX: u32 = 2u;
// Accumulate the row statistics per thread in registers while visiting the rows (lanes = rows,
// uniform indices: fast on CPU adapters), then reduce the WG partial sums; when the statistics
// do not fit MAX_STATS, threads over statistics loop over the stored row values instead.
override PRIVATE_STATS: bool = true;
// Merge identical batch rows (trees without magnitude noise draw few distinct rows: the notebook's
// has 9 possible), comparing each row with the first SEARCH distinct ones.
override DEDUP: bool = true;
override SEARCH: u32 = 32u;

const MAX_LATENTS: u32 = 64u;
const MAX_FEATURES: u32 = 64u;
// Workgroup and per-thread arrays have fixed sizes (the largest shapes the fused path takes).
const MAX_WG: u32 = 256u;
const MAX_STATS: u32 = 512u;
const MAX_GRAM: u32 = 512u;

struct Run {
  first_model: u32,
  num_models: u32,
  num_steps: u32,     // K: steps in this dispatch
  total_steps: u32,   // length of the whole schedule (for the decay)
  warmup_steps: u32,
  decay_steps: u32,
  lr_end_factor: f32, // lr at the end of the decay, as a fraction of lr
  num_groups: u32,
  counter_index: u32, // where the data step counter lives in `state`
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> opt: array<f32>;
@group(0) @binding(2) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(3) var<storage, read> tree_nodes: array<u32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(7) var<storage, read_write> features: array<f32>;
@group(0) @binding(8) var<uniform> run: Run;

var<workgroup> partial: array<f32, MAX_WG>;
var<workgroup> stop: u32;
var<workgroup> normalize_flag: u32;

fn p_count() -> u32 { return 2u * D_IN * D_SAE + D_SAE + D_IN; }
fn off_b_enc() -> u32 { return D_IN * D_SAE; }
fn off_w_dec() -> u32 { return D_IN * D_SAE + D_SAE; }
fn off_b_dec() -> u32 { return 2u * D_IN * D_SAE + D_SAE; }

// ---- Scratch layout of one model (floats). S = D_SAE, F = N_FEAT, T = T_MAX, B = BATCH.
// Gram quantities (phase 0):
fn g_ew() -> u32 { return 0u; }                        // E W_enc      [F][S]
fn g_bw() -> u32 { return N_FEAT * D_SAE; }            // b_dec W_enc  [S]
fn g_ww() -> u32 { return g_bw() + D_SAE; }            // W_dec W_decᵀ [S][S]
fn g_we() -> u32 { return g_ww() + D_SAE * D_SAE; }    // W_dec Eᵀ     [S][F]
fn g_wb() -> u32 { return g_we() + D_SAE * N_FEAT; }   // W_dec b_dec  [S]
fn g_eb() -> u32 { return g_wb() + D_SAE; }            // E b_dec      [F]
fn g_ee() -> u32 { return g_eb() + N_FEAT; }           // E Eᵀ         [F][F]
fn g_bb() -> u32 { return g_ee() + N_FEAT * N_FEAT; }  // b_dec·b_dec  [1]
// Row values (phase A), column-major [column][B]:
fn r_c() -> u32 { return g_bb() + 1u; }                // dL/dr scale per term [T][B]
fn r_a() -> u32 { return r_c() + T_MAX * BATCH; }      // acts         [S][B]
fn r_dpre() -> u32 { return r_a() + D_SAE * BATCH; }   // dL/dpre      [S][B]
fn r_dw() -> u32 { return r_dpre() + D_SAE * BATCH; }  // dL/d||W_dec[j]|| [S][B]
fn r_loss() -> u32 { return r_dw() + D_SAE * BATCH; }  // recon, l1 per term [2T][B]
// Row statistics (phase C):
fn s_aa() -> u32 { return r_loss() + 2u * T_MAX * BATCH; } // Q_AA [S][S]
fn s_a() -> u32 { return s_aa() + D_SAE * D_SAE; }          // Q_A  [S]
fn s_af() -> u32 { return s_a() + D_SAE; }                  // Q_AF [S][F]
fn s_pa() -> u32 { return s_af() + D_SAE * N_FEAT; }        // P_A  [S]
fn s_pf() -> u32 { return s_pa() + D_SAE; }                 // P_F  [F]
fn s_pc() -> u32 { return s_pf() + N_FEAT; }                // P_C  [1]
fn s_fd() -> u32 { return s_pc() + 1u; }                    // S_FD [F][S]
fn s_d() -> u32 { return s_fd() + N_FEAT * D_SAE; }         // S_D  [S]
fn s_dw() -> u32 { return s_d() + D_SAE; }                  // DW   [S]
fn s_loss() -> u32 { return s_dw() + D_SAE; }               // loss slots [2T]
fn n_stats() -> u32 { return s_loss() + 2u * T_MAX - s_aa(); }
fn p_part() -> u32 { return s_loss() + 2u * T_MAX; }       // per-thread partial statistics [n_stats][WG]
fn p_gram() -> u32 { return p_part() + select(0u, n_stats() * WG, PRIVATE_STATS); } // [gram][WG]
/** Floats of scratch per model (mirrored in src/sae/fused_step.ts). */
fn scratch_size() -> u32 { return p_gram() + (g_bb() + 1u) * WG; }

fn lr_factor(step: u32) -> f32 {
  var f = 1.0;
  if (run.warmup_steps > 0u && step < run.warmup_steps) {
    f = f32(step + 1u) / f32(run.warmup_steps);
  }
  if (run.decay_steps > 0u && step + run.decay_steps >= run.total_steps) {
    let left = f32(run.total_steps - step) / f32(run.decay_steps);
    f = f * (run.lr_end_factor + (1.0 - run.lr_end_factor) * left);
  }
  return f;
}

fn is_finite(v: f32) -> bool {
  return v == v && abs(v) <= 3.4028234e38;
}

// The batch rows of (step k, group g): a block of 1 + BATCH (N_FEAT + 1) floats: the number U of
// distinct rows, then the rows, each N_FEAT feature values and its multiplicity.
fn rows_base(k: u32, g: u32) -> u32 {
  return (k * run.num_groups + g) * (1u + BATCH * (N_FEAT + 1u));
}
/** Feature f of (distinct) row b of data group g at step k of this dispatch. */
fn feature_index(k: u32, g: u32, b: u32, f: u32) -> u32 {
  return rows_base(k, g) + 1u + b * (N_FEAT + 1u) + f;
}
fn row_count(k: u32, g: u32, b: u32) -> f32 {
  return features[rows_base(k, g) + 1u + b * (N_FEAT + 1u) + N_FEAT];
}

@compute @workgroup_size(64)
fn sample(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  if (id >= run.num_steps * run.num_groups * BATCH) { return; }
  let b = id % BATCH;
  let g = (id / BATCH) % run.num_groups;
  let k = id / (BATCH * run.num_groups);
  let step = state[run.counter_index] + k;
  let tree_base = tree_nodes[g * 4u];
  let seed = tree_nodes[g * 4u + 1u];
  let n_feat = tree_nodes[g * 4u + 2u];
  for (var f = 0u; f < N_FEAT; f++) {
    var v = 0.0;
    if (f < n_feat) { v = tree_feature_value(tree_base, f, seed, step, b); }
    features[feature_index(k, g, b, f)] = v;
  }
  features[feature_index(k, g, b, N_FEAT)] = 1.0; // the row's multiplicity
}

@compute @workgroup_size(8)
fn compact(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 8u;
  if (id >= run.num_steps * run.num_groups) { return; }
  let g = id % run.num_groups;
  let k = id / run.num_groups;
  var u = 0u; // distinct rows so far, kept in place at the front
  if (!DEDUP) {
    u = BATCH;
  } else {
    for (var b = 0u; b < BATCH; b++) {
      var found = u;
      for (var c = 0u; c < min(u, SEARCH); c++) {
        var same = true;
        for (var f = 0u; f < N_FEAT; f++) {
          same = same && features[feature_index(k, g, c, f)] == features[feature_index(k, g, b, f)];
        }
        if (same) {
          found = c;
          break;
        }
      }
      if (found < u) {
        features[feature_index(k, g, found, N_FEAT)] += 1.0;
      } else {
        for (var f = 0u; f < N_FEAT; f++) {
          features[feature_index(k, g, u, f)] = features[feature_index(k, g, b, f)];
        }
        features[feature_index(k, g, u, N_FEAT)] = 1.0;
        u += 1u;
      }
    }
  }
  features[rows_base(k, g)] = f32(u);
}

@compute @workgroup_size(1)
fn advance() {
  state[run.counter_index] += run.num_steps;
}

@compute @workgroup_size(WG)
fn train(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) tid: u32,
) {
  let local = wid.x + wid.y * nwg.x;
  if (local >= run.num_models) { return; } // uniform per workgroup
  let m = run.first_model + local;
  let info = models[m];
  let P = p_count();
  let pb = m * P;                 // this model's parameters
  let gb = m * 3u * P;            // gradient; + P first moment; + 2P second moment
  let sb = local * scratch_size();
  let group = info.data_group;
  let nf = tree_nodes[group * 4u + 2u];
  let eb = tree_nodes[group * 4u + 3u]; // embedding E [nf][D_IN]
  let apply_bdec = select(0.0, 1.0, info.apply_b_dec_to_input != 0u);
  let by_norm = info.l1_by_decoder_norm != 0u;
  let n_terms = info.num_terms;
  let inv_b = 1.0 / f32(BATCH);

  if (tid == 0u) {
    stop = state[m * 2u + 1u];
    normalize_flag = info.normalize_decoder;
  }
  let t0 = state[m * 2u];
  let normalize_dec = workgroupUniformLoad(&normalize_flag) != 0u;
  var done = 0u;
  for (var k = 0u; k < run.num_steps; k++) {
    if (workgroupUniformLoad(&stop) != 0u) { break; }
    let step = t0 + k;

    // ---- Phase 0: Gram quantities of this step's parameters. One thread per input column d adds
    // that column's products to its partial sums (loops of compile-time length), then the WG
    // partial sums are reduced.
    var gacc: array<f32, MAX_GRAM>;
    for (var e = 0u; e <= g_bb(); e++) { gacc[e] = 0.0; }
    for (var d = tid; d < D_IN; d += WG) {
      var ef: array<f32, MAX_FEATURES>; // E[f][d]
      var wl: array<f32, MAX_LATENTS>;  // W_dec[l][d]
      var we: array<f32, MAX_LATENTS>;  // W_enc[d][l]
      for (var f = 0u; f < N_FEAT; f++) {
        ef[f] = select(0.0, bitcast<f32>(tree_nodes[eb + min(f, nf - 1u) * D_IN + d]), f < nf);
      }
      for (var l = 0u; l < D_SAE; l++) {
        wl[l] = params[pb + off_w_dec() + l * D_IN + d];
        we[l] = params[pb + d * D_SAE + l];
      }
      let bdd = params[pb + off_b_dec() + d];
      for (var f = 0u; f < N_FEAT; f++) {
        for (var j = 0u; j < D_SAE; j++) { gacc[g_ew() + f * D_SAE + j] += ef[f] * we[j]; }
        gacc[g_eb() + f] += ef[f] * bdd;
        for (var h = 0u; h < N_FEAT; h++) { gacc[g_ee() + f * N_FEAT + h] += ef[f] * ef[h]; }
      }
      for (var i = 0u; i < D_SAE; i++) {
        gacc[g_bw() + i] += bdd * we[i];
        for (var j = 0u; j < D_SAE; j++) { gacc[g_ww() + i * D_SAE + j] += wl[i] * wl[j]; }
        for (var f = 0u; f < N_FEAT; f++) { gacc[g_we() + i * N_FEAT + f] += wl[i] * ef[f]; }
        gacc[g_wb() + i] += wl[i] * bdd;
      }
      gacc[g_bb()] += bdd * bdd;
    }
    for (var e = 0u; e <= g_bb(); e++) { scratch[sb + p_gram() + e * WG + tid] = gacc[e]; }
    workgroupBarrier();
    for (var e = tid; e <= g_bb(); e += WG) {
      var acc = 0.0;
      for (var w = 0u; w < WG; w++) { acc += scratch[sb + p_gram() + e * WG + w]; }
      scratch[sb + e] = acc;
    }
    workgroupBarrier();

    // This thread's copy of the Gram quantities, read per row with uniform indices.
    var gr: array<f32, MAX_GRAM>;
    for (var e = 0u; e <= g_bb(); e++) { gr[e] = scratch[sb + e]; }
    // This thread's partial row statistics (PRIVATE_STATS). Zeroed explicitly: a declaration in
    // a loop body is not re-initialised per iteration by every WGSL compiler.
    var st: array<f32, MAX_STATS>;
    if (PRIVATE_STATS) {
      for (var e = 0u; e < n_stats(); e++) { st[e] = 0.0; }
    }
    // ---- Phase A: one thread per batch row, in latent space. x = f E; u_t = sum_{i<end} a_i W_i;
    // e_t = u_t + b_dec - x; q_i = e_t . W_i; ||e_t||^2 = sum a_i q_i + e_t.b_dec - e_t.x.
    // Every loop here runs a compile-time number of times (D_SAE, N_FEAT, T_MAX; ranges become
    // masks), so the shader compiler can unroll them: features past a tree's own count are 0.
    let n_rows = u32(features[rows_base(k, group)]);
    // Only the distinct rows (every row index when the rows are kept in scratch, to zero the rest).
    let row_end = select(BATCH, n_rows, PRIVATE_STATS);
    for (var b = tid; b < row_end; b += WG) {
      if (b >= n_rows) {
        if (!PRIVATE_STATS) {
          // Rows past the distinct ones contribute nothing to the statistics of phase C.
          for (var t = 0u; t < T_MAX; t++) {
            scratch[sb + r_c() + t * BATCH + b] = 0.0;
            scratch[sb + r_loss() + t * BATCH + b] = 0.0;
            scratch[sb + r_loss() + (T_MAX + t) * BATCH + b] = 0.0;
          }
          for (var j = 0u; j < D_SAE; j++) {
            scratch[sb + r_a() + j * BATCH + b] = 0.0;
            scratch[sb + r_dpre() + j * BATCH + b] = 0.0;
            scratch[sb + r_dw() + j * BATCH + b] = 0.0;
          }
        }
        continue;
      }
      let mult = row_count(k, group, b); // how many batch rows this distinct row stands for
      var fv: array<f32, MAX_FEATURES>;
      var a: array<f32, MAX_LATENTS>;
      var h: array<f32, MAX_LATENTS>;   // x . W_i
      var dact: array<f32, MAX_LATENTS>;
      var dw: array<f32, MAX_LATENTS>;
      var am: array<f32, MAX_LATENTS>;  // a masked to the term's decoded latents
      var q: array<f32, MAX_LATENTS>;   // e_t . W_i
      for (var f = 0u; f < N_FEAT; f++) { fv[f] = features[feature_index(k, group, b, f)]; }
      var xx = 0.0; // x . x
      var bx = 0.0; // x . b_dec
      for (var f = 0u; f < N_FEAT; f++) {
        bx += fv[f] * gr[g_eb() + f];
        for (var g = 0u; g < N_FEAT; g++) { xx += fv[f] * fv[g] * gr[g_ee() + f * N_FEAT + g]; }
      }
      // hidden_pre = (x - b_dec) W_enc + b_enc = f (E W_enc) - b_dec W_enc + b_enc ; acts = ReLU
      for (var j = 0u; j < D_SAE; j++) {
        var pre = params[pb + off_b_enc() + j] - apply_bdec * gr[g_bw() + j];
        var xw = 0.0;
        for (var f = 0u; f < N_FEAT; f++) {
          pre += fv[f] * gr[g_ew() + f * D_SAE + j];
          xw += fv[f] * gr[g_we() + j * N_FEAT + f];
        }
        a[j] = max(pre, 0.0);
        h[j] = xw;
        dact[j] = 0.0;
        dw[j] = 0.0;
      }
      var cs: array<f32, MAX_TERMS>;
      var rls: array<f32, MAX_TERMS>;
      var lls: array<f32, MAX_TERMS>;
      for (var t = 0u; t < T_MAX; t++) {
        var c = 0.0;
        var recon_row = 0.0;
        var l1_row = 0.0;
        if (t < n_terms) {
          let term = info.terms[t];
          for (var j = 0u; j < D_SAE; j++) { am[j] = select(0.0, a[j], j < term.end); }
          var ea = 0.0; // e . u
          var ub = 0.0; // u . b_dec
          var ux = 0.0; // u . x
          for (var i = 0u; i < D_SAE; i++) {
            var qi = gr[g_wb() + i] - h[i];
            for (var j = 0u; j < D_SAE; j++) { qi += am[j] * gr[g_ww() + j * D_SAE + i]; }
            q[i] = qi;
            ea += am[i] * qi;
            ub += am[i] * gr[g_wb() + i];
            ux += am[i] * h[i];
          }
          let eb_dot = ub + gr[g_bb()] - bx;
          let ex_dot = ux + bx - xx;
          let sq = max(ea + eb_dot - ex_dot, 0.0);
          // MSE: mean_b sum_d e^2 -> dL/de = 2 mult e / B ; L2: mean_b ||e|| -> mult e / (B ||e||)
          c = 2.0 * term.recon_mult * inv_b;
          recon_row = term.recon_mult * sq * inv_b;
          if (term.recon_kind == RECON_L2) {
            let norm = sqrt(sq);
            c = select(0.0, term.recon_mult * inv_b / norm, norm > 0.0);
            recon_row = term.recon_mult * norm * inv_b;
          }
          for (var j = 0u; j < D_SAE; j++) {
            let trained = j >= term.detach_below && j < term.end;
            dact[j] += select(0.0, c * q[j], trained);
          }
          // Sparsity: l1_mult * mean_b || w (.) a[l1_start:l1_end] ||_p, w_j = ||W_dec[j]|| or 1
          if (term.l1_mult != 0.0 && term.l1_end > term.l1_start) {
            let p = info.lp_norm;
            var s = 0.0;
            for (var j = 0u; j < D_SAE; j++) {
              let w = select(1.0, sqrt(gr[g_ww() + j * D_SAE + j]), by_norm);
              let v = select(0.0, w * a[j], j >= term.l1_start && j < term.l1_end);
              s += select(pow(v, p), v, p == 1.0);
            }
            let norm = select(pow(s, 1.0 / p), s, p == 1.0);
            l1_row = term.l1_mult * norm * inv_b;
            let cl = term.l1_mult * inv_b;
            for (var j = 0u; j < D_SAE; j++) {
              let w = select(1.0, sqrt(gr[g_ww() + j * D_SAE + j]), by_norm);
              let v = select(0.0, w * a[j], j >= term.l1_start && j < term.l1_end);
              // d||v||_p / dv_j: sign(v_j) for p = 1, (v_j / ||v||_p)^(p - 1) otherwise
              var dv = select(0.0, 1.0, v > 0.0);
              if (p != 1.0) { dv = select(0.0, pow(v / norm, p - 1.0), v > 0.0 && norm > 0.0); }
              dact[j] += cl * dv * w;
              dw[j] += cl * dv * a[j];
            }
          }
        }
        // Everything summed over rows is linear in these: scale by the row's multiplicity.
        cs[t] = c * mult;
        rls[t] = recon_row * mult;
        lls[t] = l1_row * mult;
      }
      for (var j = 0u; j < D_SAE; j++) {
        // ReLU backward: the gradient passes where the activation is positive.
        dact[j] = select(0.0, dact[j] * mult, a[j] > 0.0);
        dw[j] = select(0.0, dw[j] * mult, by_norm);
      }
      if (PRIVATE_STATS) {
        // This row's contribution to every statistic of phase C (same layout, from s_aa()).
        let o_a = s_a() - s_aa();
        let o_af = s_af() - s_aa();
        let o_pa = s_pa() - s_aa();
        let o_pf = s_pf() - s_aa();
        let o_pc = s_pc() - s_aa();
        let o_fd = s_fd() - s_aa();
        let o_d = s_d() - s_aa();
        let o_dw = s_dw() - s_aa();
        let o_loss = s_loss() - s_aa();
        for (var t = 0u; t < T_MAX; t++) {
          let term = info.terms[t];
          let c = cs[t]; // 0 for t >= n_terms
          for (var j = 0u; j < D_SAE; j++) {
            let trained = j >= term.detach_below && j < term.end;
            let cj = select(0.0, c * a[j], trained);
            for (var i = 0u; i < D_SAE; i++) {
              st[j * D_SAE + i] += cj * select(0.0, a[i], i < term.end);
            }
            st[o_a + j] += cj;
            for (var f = 0u; f < N_FEAT; f++) { st[o_af + j * N_FEAT + f] += cj * fv[f]; }
            st[o_pa + j] += select(0.0, c * a[j], j < term.end);
          }
          for (var f = 0u; f < N_FEAT; f++) { st[o_pf + f] += c * fv[f]; }
          st[o_pc] += c;
        }
        for (var f = 0u; f < N_FEAT; f++) {
          for (var j = 0u; j < D_SAE; j++) { st[o_fd + f * D_SAE + j] += fv[f] * dact[j]; }
        }
        for (var j = 0u; j < D_SAE; j++) {
          st[o_d + j] += dact[j];
          st[o_dw + j] += dw[j];
        }
        for (var t = 0u; t < T_MAX; t++) {
          st[o_loss + t] += rls[t];
          st[o_loss + T_MAX + t] += lls[t];
        }
      } else {
        for (var t = 0u; t < T_MAX; t++) {
          scratch[sb + r_c() + t * BATCH + b] = cs[t];
          scratch[sb + r_loss() + t * BATCH + b] = rls[t];
          scratch[sb + r_loss() + (T_MAX + t) * BATCH + b] = lls[t];
        }
        for (var j = 0u; j < D_SAE; j++) {
          scratch[sb + r_a() + j * BATCH + b] = a[j];
          scratch[sb + r_dpre() + j * BATCH + b] = dact[j];
          scratch[sb + r_dw() + j * BATCH + b] = dw[j];
        }
      }
    }
    if (PRIVATE_STATS) {
      for (var s = 0u; s < n_stats(); s++) { scratch[sb + p_part() + s * WG + tid] = st[s]; }
    }
    workgroupBarrier();

    // ---- Phase C: statistics over the rows (threads over entries), each a sum over b of a row
    // product weighted by the c_t of the terms that train it.
    if (PRIVATE_STATS) {
      for (var e = tid; e < n_stats(); e += WG) {
        var acc = 0.0;
        for (var w = 0u; w < WG; w++) { acc += scratch[sb + p_part() + e * WG + w]; }
        scratch[sb + s_aa() + e] = acc;
      }
    }
    let nc = select(
      D_SAE * D_SAE + D_SAE + D_SAE * nf + D_SAE + nf + 1u + nf * D_SAE + 2u * D_SAE + 2u * T_MAX,
      0u,
      PRIVATE_STATS,
    );
    for (var e = tid; e < nc; e += WG) {
      var acc = 0.0;
      var dst = 0u;
      var r = e;
      if (r < D_SAE * D_SAE) {
        // Q_AA[j][i] = sum_b a_j a_i sum_{t: detach <= j < end, i < end} c_t
        let j = r / D_SAE;
        let i = r % D_SAE;
        for (var t = 0u; t < n_terms; t++) {
          let term = info.terms[t];
          if (j >= term.detach_below && j < term.end && i < term.end) {
            for (var b = 0u; b < BATCH; b++) {
              acc += scratch[sb + r_c() + t * BATCH + b] * scratch[sb + r_a() + j * BATCH + b] *
                scratch[sb + r_a() + i * BATCH + b];
            }
          }
        }
        dst = s_aa() + r;
      } else {
        r -= D_SAE * D_SAE;
        if (r < D_SAE) {
          // Q_A[j] = sum_b a_j sum_{t: detach <= j < end} c_t
          for (var t = 0u; t < n_terms; t++) {
            let term = info.terms[t];
            if (r >= term.detach_below && r < term.end) {
              for (var b = 0u; b < BATCH; b++) {
                acc += scratch[sb + r_c() + t * BATCH + b] * scratch[sb + r_a() + r * BATCH + b];
              }
            }
          }
          dst = s_a() + r;
        } else {
          r -= D_SAE;
          if (r < D_SAE * nf) {
            // Q_AF[j][f] = sum_b a_j f_f sum_{t: detach <= j < end} c_t
            let j = r / nf;
            let f = r % nf;
            for (var t = 0u; t < n_terms; t++) {
              let term = info.terms[t];
              if (j >= term.detach_below && j < term.end) {
                for (var b = 0u; b < BATCH; b++) {
                  acc += scratch[sb + r_c() + t * BATCH + b] * scratch[sb + r_a() + j * BATCH + b] *
                    features[feature_index(k, group, b, f)];
                }
              }
            }
            dst = s_af() + j * N_FEAT + f;
          } else {
            r -= D_SAE * nf;
            if (r < D_SAE) {
              // P_A[i] = sum_b a_i sum_{t: i < end} c_t   (b_dec's gradient)
              for (var t = 0u; t < n_terms; t++) {
                if (r < info.terms[t].end) {
                  for (var b = 0u; b < BATCH; b++) {
                    acc += scratch[sb + r_c() + t * BATCH + b] * scratch[sb + r_a() + r * BATCH + b];
                  }
                }
              }
              dst = s_pa() + r;
            } else {
              r -= D_SAE;
              if (r < nf + 1u) {
                // P_F[f] = sum_b f_f sum_t c_t ; P_C = sum_b sum_t c_t
                for (var t = 0u; t < n_terms; t++) {
                  for (var b = 0u; b < BATCH; b++) {
                    var v = 1.0;
                    if (r < nf) { v = features[feature_index(k, group, b, r)]; }
                    acc += scratch[sb + r_c() + t * BATCH + b] * v;
                  }
                }
                dst = select(s_pc(), s_pf() + r, r < nf);
              } else {
                r -= nf + 1u;
                if (r < nf * D_SAE) {
                  // S_FD[f][j] = sum_b f_f dpre_j   (W_enc's gradient, x_in = f E - b_dec)
                  let f = r / D_SAE;
                  let j = r % D_SAE;
                  for (var b = 0u; b < BATCH; b++) {
                    acc += features[feature_index(k, group, b, f)] * scratch[sb + r_dpre() + j * BATCH + b];
                  }
                  dst = s_fd() + f * D_SAE + j;
                } else {
                  r -= nf * D_SAE;
                  if (r < 2u * D_SAE) {
                    // S_D[j] = sum_b dpre_j ; DW[j] = sum_b dL/d||W_dec[j]||
                    let col = select(r_dw() + (r - D_SAE) * BATCH, r_dpre() + r * BATCH, r < D_SAE);
                    for (var b = 0u; b < BATCH; b++) { acc += scratch[sb + col + b]; }
                    dst = select(s_dw() + r - D_SAE, s_d() + r, r < D_SAE);
                  } else {
                    // loss slots: recon and l1 per term, summed over rows
                    r -= 2u * D_SAE;
                    for (var b = 0u; b < BATCH; b++) { acc += scratch[sb + r_loss() + r * BATCH + b]; }
                    dst = s_loss() + r;
                  }
                }
              }
            }
          }
        }
      }
      scratch[sb + dst] = acc;
    }
    workgroupBarrier();

    // ---- Phase G: every parameter's gradient from the statistics. One thread per input column d
    // computes W_enc[d][:], W_dec[:][d] and b_dec[d] from that column's E[:][d] and W_dec[:][d],
    // with the statistics copied to registers (loops of compile-time length).
    var qs: array<f32, MAX_STATS>;
    for (var e = 0u; e < n_stats(); e++) { qs[e] = scratch[sb + s_aa() + e]; }
    let q_a = s_a() - s_aa();
    let q_af = s_af() - s_aa();
    let q_pa = s_pa() - s_aa();
    let q_pf = s_pf() - s_aa();
    let q_pc = s_pc() - s_aa();
    let q_fd = s_fd() - s_aa();
    let q_d = s_d() - s_aa();
    let q_dw = s_dw() - s_aa();
    var sumsq = 0.0;
    for (var j = tid; j < D_SAE; j += WG) {
      let g = qs[q_d + j]; // b_enc[j] = S_D[j]
      opt[gb + off_b_enc() + j] = g;
      sumsq += g * g;
    }
    for (var d = tid; d < D_IN; d += WG) {
      var ef: array<f32, MAX_FEATURES>; // E[f][d]
      var wl: array<f32, MAX_LATENTS>;  // W_dec[l][d]
      for (var f = 0u; f < N_FEAT; f++) {
        ef[f] = select(0.0, bitcast<f32>(tree_nodes[eb + min(f, nf - 1u) * D_IN + d]), f < nf);
      }
      for (var l = 0u; l < D_SAE; l++) { wl[l] = params[pb + off_w_dec() + l * D_IN + d]; }
      let bdd = params[pb + off_b_dec() + d];
      // b_dec[d] = sum_l P_A[l] W_dec[l][d] + P_C b_dec[d] - sum_f P_F[f] E[f][d]
      //          - [apply] sum_j W_enc[d][j] S_D[j]
      var gb_dec = qs[q_pc] * bdd;
      for (var j = 0u; j < D_SAE; j++) {
        // W_enc[d][j] = sum_f E[f][d] S_FD[f][j] - [apply] b_dec[d] S_D[j]
        var ge = -apply_bdec * bdd * qs[q_d + j];
        for (var f = 0u; f < N_FEAT; f++) { ge += ef[f] * qs[q_fd + f * D_SAE + j]; }
        opt[gb + d * D_SAE + j] = ge;
        sumsq += ge * ge;
        // W_dec[j][d] = sum_l Q_AA[j][l] W_dec[l][d] + Q_A[j] b_dec[d] - sum_f Q_AF[j][f] E[f][d]
        //             + DW[j] W_dec[j][d] / ||W_dec[j]||
        var gd = qs[q_a + j] * bdd;
        for (var l = 0u; l < D_SAE; l++) { gd += qs[j * D_SAE + l] * wl[l]; }
        for (var f = 0u; f < N_FEAT; f++) { gd -= qs[q_af + j * N_FEAT + f] * ef[f]; }
        let norm = sqrt(gr[g_ww() + j * D_SAE + j]);
        if (by_norm && norm > 0.0) { gd += qs[q_dw + j] * wl[j] / norm; }
        opt[gb + off_w_dec() + j * D_IN + d] = gd;
        sumsq += gd * gd;
        gb_dec += qs[q_pa + j] * wl[j] - apply_bdec * params[pb + d * D_SAE + j] * qs[q_d + j];
      }
      for (var f = 0u; f < N_FEAT; f++) { gb_dec -= qs[q_pf + f] * ef[f]; }
      opt[gb + off_b_dec() + d] = gb_dec;
      sumsq += gb_dec * gb_dec;
    }
    partial[tid] = sumsq;
    if (normalize_dec) {
      workgroupBarrier();
      // Remove each decoder row's gradient component parallel to the (unit) row.
      for (var j = tid; j < D_SAE; j += WG) {
        let row = pb + off_w_dec() + j * D_IN;
        let grow = gb + off_w_dec() + j * D_IN;
        var dot = 0.0;
        for (var d = 0u; d < D_IN; d++) { dot += opt[grow + d] * params[row + d]; }
        for (var d = 0u; d < D_IN; d++) { opt[grow + d] -= dot * params[row + d]; }
      }
      workgroupBarrier();
      var again = 0.0;
      for (var i = tid; i < P; i += WG) { again += opt[gb + i] * opt[gb + i]; }
      partial[tid] = again;
    }
    workgroupBarrier();

    // ---- Phase D: global norm, divergence check, clip and Adam (threads over parameters).
    var total_sq = 0.0;
    for (var i = 0u; i < WG; i++) { total_sq += partial[i]; }
    let grad_norm = sqrt(total_sq);
    var loss = 0.0;
    for (var s = 0u; s < 2u * T_MAX; s++) { loss += scratch[sb + s_loss() + s]; }
    let ok = is_finite(loss) && is_finite(grad_norm);
    if (tid == 0u) {
      let lb = m * LOSS_WORDS;
      losses[lb + LOSS_TOTAL] = loss;
      losses[lb + LOSS_GRAD_NORM] = grad_norm;
      for (var t = 0u; t < MAX_TERMS; t++) {
        var recon = 0.0;
        var l1 = 0.0;
        if (t < T_MAX) {
          recon = scratch[sb + s_loss() + t];
          l1 = scratch[sb + s_loss() + T_MAX + t];
        }
        losses[lb + LOSS_RECON0 + t] = recon;
        losses[lb + LOSS_L10 + t] = l1;
      }
    }
    if (ok) {
      var clip = 1.0;
      if (info.clip_norm > 0.0) { clip = min(1.0, info.clip_norm / (grad_norm + 1e-6)); }
      let tt = f32(step + 1u);
      let bc1 = 1.0 - pow(info.beta1, tt);
      let bc2 = 1.0 - pow(info.beta2, tt);
      let step_size = info.lr * lr_factor(step) / bc1;
      let sqrt_bc2 = sqrt(bc2);
      // Four consecutive parameters per iteration (an inner loop of compile-time length).
      for (var i0 = tid * 4u; i0 < P; i0 += WG * 4u) {
        for (var u = 0u; u < 4u; u++) {
          let i = i0 + u;
          if (i < P) {
            let g = opt[gb + i] * clip;
            let mo = info.beta1 * opt[gb + P + i] + (1.0 - info.beta1) * g;
            let ve = info.beta2 * opt[gb + 2u * P + i] + (1.0 - info.beta2) * g * g;
            opt[gb + P + i] = mo;
            opt[gb + 2u * P + i] = ve;
            params[pb + i] -= step_size * mo / (sqrt(ve) / sqrt_bc2 + info.eps);
          }
        }
      }
    } else if (tid == 0u) {
      stop = step + 1u;
      state[m * 2u + 1u] = step + 1u;
    }
    if (normalize_dec) {
      workgroupBarrier();
      for (var j = tid; j < D_SAE; j += WG) {
        let row = pb + off_w_dec() + j * D_IN;
        var s = 0.0;
        for (var d = 0u; d < D_IN; d++) { s += params[row + d] * params[row + d]; }
        let inv = select(0.0, 1.0 / sqrt(s), s > 0.0);
        for (var d = 0u; d < D_IN; d++) { params[row + d] *= inv; }
      }
    }
    workgroupBarrier();
    done = k + 1u;
  }
  if (tid == 0u) { state[m * 2u] = t0 + done; }
}
