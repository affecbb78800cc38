// train_fused.wgsl: K complete training steps of M small SAEs in ONE dispatch.
//
// Each workgroup owns one model and loops over the steps; inside a step:
//   sample the batch from the model's tree (counter-based PRNG: a pure function of seed, step, row)
//   -> embed x = f @ E -> encode (x - b_dec) @ W_enc + b_enc, ReLU -> every loss term's partial
//   reconstruction, reconstruction loss and sparsity penalty -> backward -> clip -> Adam,
// with workgroup barriers between the phases. Nothing is read back and nothing is uploaded per
// step; the step counter lives in `state`. Same maths as the kernel-per-op path
// (src/sae/kernel_step.ts) and the CPU reference (src/reference/sae_reference.ts).
//
// Included after shaders/lib/prng.wgsl, shaders/lib/tree_sample.wgsl (which reads `tree_nodes`)
// and shaders/lib/model_table.wgsl.
//
// Shapes (overrides): BATCH rows, D_IN inputs, D_SAE <= MAX_LATENTS latents, T_MAX loss terms
// (the most any model of the run has), WG threads per workgroup. P = 2 D_IN D_SAE + D_SAE + D_IN.
// Bindings:
//   0 params   [M][P]       f32  rw   W_enc [D_IN][D_SAE], b_enc, W_dec [D_SAE][D_IN], b_dec
//   1 opt      [M][3][P]    f32  rw   gradient, Adam first moment, Adam second moment
//   2 models   [M]          ModelInfo (shaders/lib/model_table.wgsl)
//   3 tree_nodes           u32  r    data groups [G][4] = (tree base, seed, n features,
//                                     embedding base), then trees, then embeddings (f32 bits)
//   4 losses   [M][LOSS_WORDS] f32 rw  the latest step's loss record
//   5 state    [M][2]       u32  rw   (steps done, status: 0 = training, s = diverged at step s)
//   6 scratch  [chunk][S]   f32  rw   per-row intermediates, column-major ([column][BATCH])
//   7 run      uniform Run
// Dispatch: one workgroup per model of the chunk [first_model, first_model + num_models);
// linear workgroup id = wid.x + wid.y * nwg.x.

override WG: u32 = 128u;
override BATCH: u32 = 128u;
override D_IN: u32 = 50u;
override D_SAE: u32 = 4u;
override T_MAX: u32 = 2u;

const MAX_LATENTS: u32 = 64u;

struct Run {
  first_model: u32,
  num_models: u32,
  num_steps: u32,     // steps in this dispatch
  total_steps: u32,   // length of the whole schedule (for decay)
  warmup_steps: u32,
  decay_steps: u32,
  lr_end_factor: f32, // lr at the end of the decay, as a fraction of lr
  _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> opt: array<f32>;
@group(0) @binding(2) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(3) var<storage, read> tree_nodes: array<u32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(7) var<uniform> run: Run;

var<workgroup> dec_norm: array<f32, MAX_LATENTS>;
var<workgroup> partial: array<f32, WG>;
var<workgroup> loss_acc: array<f32, 16>;
var<workgroup> stop: u32;
var<workgroup> normalize_flag: u32;

fn p_count() -> u32 { return 2u * D_IN * D_SAE + D_SAE + D_IN; }
fn off_b_enc() -> u32 { return D_IN * D_SAE; }
fn off_w_dec() -> u32 { return D_IN * D_SAE + D_SAE; }
fn off_b_dec() -> u32 { return 2u * D_IN * D_SAE + D_SAE; }

// Scratch regions of one model, each [columns][BATCH].
fn s_x() -> u32 { return 0u; }                              // x         [D_IN]
fn s_act() -> u32 { return D_IN * BATCH; }                  // acts      [D_SAE]
fn s_dpre() -> u32 { return (D_IN + D_SAE) * BATCH; }       // dL/dpre   [D_SAE]
fn s_dw() -> u32 { return (D_IN + 2u * D_SAE) * BATCH; }    // dL/d||W_dec[j]|| per row [D_SAE]
fn s_dr() -> u32 { return (D_IN + 3u * D_SAE) * BATCH; }    // dL/dr_t   [T_MAX][D_IN]
fn s_rowloss() -> u32 { return (D_IN + 3u * D_SAE + T_MAX * D_IN) * BATCH; } // [2 T_MAX]
/** Floats of scratch per model (mirrored in src/sae/fused_step.ts). */
fn scratch_size() -> u32 { return (D_IN + 3u * D_SAE + T_MAX * D_IN + 2u * T_MAX) * BATCH; }

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
  let group = info.data_group * 4u;
  let tree_base = tree_nodes[group];
  let seed = tree_nodes[group + 1u];
  let n_feat = tree_nodes[group + 2u];
  let embed_base = tree_nodes[group + 3u];
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

    // ---- Phase 0: decoder row norms (for the sparsity weighting and its gradient).
    for (var j = tid; j < D_SAE; j += WG) {
      var s = 0.0;
      for (var d = 0u; d < D_IN; d++) {
        let w = params[pb + off_w_dec() + j * D_IN + d];
        s += w * w;
      }
      dec_norm[j] = sqrt(s);
    }
    workgroupBarrier();

    // ---- Phase A: one thread per batch row: sample, embed, encode, every term's loss and the
    // gradients that stay within the row (dL/dr_t, dL/dpre, dL/d||W_dec|| contributions).
    for (var b = tid; b < BATCH; b += WG) {
      for (var d = 0u; d < D_IN; d++) { scratch[sb + s_x() + d * BATCH + b] = 0.0; }
      for (var f = 0u; f < n_feat; f++) {
        let v = tree_feature_value(tree_base, f, seed, step, b);
        if (v != 0.0) {
          let eb = embed_base + f * D_IN;
          for (var d = 0u; d < D_IN; d++) {
            scratch[sb + s_x() + d * BATCH + b] += v * bitcast<f32>(tree_nodes[eb + d]);
          }
        }
      }
      // hidden_pre = (x - b_dec) @ W_enc + b_enc ; acts = ReLU(hidden_pre)      [D_SAE]
      var act: array<f32, MAX_LATENTS>;
      var dact: array<f32, MAX_LATENTS>;
      var dw: array<f32, MAX_LATENTS>;
      for (var j = 0u; j < D_SAE; j++) {
        act[j] = params[pb + off_b_enc() + j];
        dact[j] = 0.0;
        dw[j] = 0.0;
      }
      for (var d = 0u; d < D_IN; d++) {
        let xin = scratch[sb + s_x() + d * BATCH + b] - apply_bdec * params[pb + off_b_dec() + d];
        for (var j = 0u; j < D_SAE; j++) {
          act[j] += xin * params[pb + d * D_SAE + j];
        }
      }
      for (var j = 0u; j < D_SAE; j++) {
        act[j] = max(act[j], 0.0);
        scratch[sb + s_act() + j * BATCH + b] = act[j];
      }
      for (var t = 0u; t < T_MAX; t++) {
        var recon_row = 0.0;
        var l1_row = 0.0;
        if (t < n_terms) {
          let term = info.terms[t];
          // e = sum_{j<end} a_j W_dec[j] + b_dec - x   (kept in the dL/dr_t slot for now)
          let dr = sb + s_dr() + t * D_IN * BATCH;
          var sq = 0.0;
          for (var d = 0u; d < D_IN; d++) {
            var e = params[pb + off_b_dec() + d] - scratch[sb + s_x() + d * BATCH + b];
            for (var j = 0u; j < term.end; j++) {
              e += act[j] * params[pb + off_w_dec() + j * D_IN + d];
            }
            scratch[dr + d * BATCH + b] = e;
            sq += e * e;
          }
          // MSE: mean_b sum_d e^2 -> dL/de = 2 mult e / B ; L2: mean_b ||e|| -> mult e / (B ||e||)
          var scale = 2.0 * term.recon_mult * inv_b;
          recon_row = term.recon_mult * sq * inv_b;
          if (term.recon_kind == RECON_L2) {
            let norm = sqrt(sq);
            scale = select(0.0, term.recon_mult * inv_b / norm, norm > 0.0);
            recon_row = term.recon_mult * norm * inv_b;
          }
          for (var d = 0u; d < D_IN; d++) {
            let g = scratch[dr + d * BATCH + b] * scale;
            scratch[dr + d * BATCH + b] = g;
            // dL/da_j += g . W_dec[j] for the latents this term trains (not detached)
            for (var j = term.detach_below; j < term.end; j++) {
              dact[j] += g * params[pb + off_w_dec() + j * D_IN + d];
            }
          }
          // Sparsity: l1_mult * mean_b || w (.) a[l1_start:l1_end] ||_p, w_j = ||W_dec[j]|| or 1
          if (term.l1_mult != 0.0 && term.l1_end > term.l1_start) {
            let p = info.lp_norm;
            var s = 0.0;
            for (var j = term.l1_start; j < term.l1_end; j++) {
              let w = select(1.0, dec_norm[j], by_norm);
              let v = w * act[j];
              s += select(pow(v, p), v, p == 1.0);
            }
            let norm = select(pow(s, 1.0 / p), s, p == 1.0);
            l1_row = term.l1_mult * norm * inv_b;
            let c = term.l1_mult * inv_b;
            for (var j = term.l1_start; j < term.l1_end; j++) {
              let w = select(1.0, dec_norm[j], by_norm);
              let v = w * act[j];
              // d||v||_p / dv_j: sign(v_j) for p = 1, (v_j / ||v||_p)^(p - 1) otherwise
              var dv = select(0.0, 1.0, v > 0.0);
              if (p != 1.0) { dv = select(0.0, pow(v / norm, p - 1.0), v > 0.0 && norm > 0.0); }
              dact[j] += c * dv * w;
              dw[j] += c * dv * act[j];
            }
          }
        }
        scratch[sb + s_rowloss() + t * BATCH + b] = recon_row;
        scratch[sb + s_rowloss() + (T_MAX + t) * BATCH + b] = l1_row;
      }
      for (var j = 0u; j < D_SAE; j++) {
        // ReLU backward: the gradient passes where the activation is positive.
        scratch[sb + s_dpre() + j * BATCH + b] = select(0.0, dact[j], act[j] > 0.0);
        scratch[sb + s_dw() + j * BATCH + b] = select(0.0, dw[j], by_norm);
      }
    }
    workgroupBarrier();

    // ---- Phase C: one thread per parameter (strided): reduce the rows into the gradient.
    var sumsq = 0.0;
    for (var i = tid; i < P; i += WG) {
      var g = 0.0;
      if (i < off_b_enc()) {
        // W_enc[d][j] = sum_b (x - b_dec)[b][d] dpre[b][j]
        let d = i / D_SAE;
        let j = i % D_SAE;
        let bd = apply_bdec * params[pb + off_b_dec() + d];
        for (var b = 0u; b < BATCH; b++) {
          g += (scratch[sb + s_x() + d * BATCH + b] - bd) * scratch[sb + s_dpre() + j * BATCH + b];
        }
      } else if (i < off_w_dec()) {
        let j = i - off_b_enc();
        for (var b = 0u; b < BATCH; b++) { g += scratch[sb + s_dpre() + j * BATCH + b]; }
      } else if (i < off_b_dec()) {
        // W_dec[j][d] = sum_t [detach_t <= j < end_t] sum_b a[b][j] dr_t[b][d] + norm term
        let j = (i - off_w_dec()) / D_IN;
        let d = (i - off_w_dec()) % D_IN;
        for (var t = 0u; t < n_terms; t++) {
          let term = info.terms[t];
          if (j >= term.detach_below && j < term.end) {
            let dr = sb + s_dr() + t * D_IN * BATCH + d * BATCH;
            for (var b = 0u; b < BATCH; b++) {
              g += scratch[sb + s_act() + j * BATCH + b] * scratch[dr + b];
            }
          }
        }
        if (by_norm && dec_norm[j] > 0.0) {
          var gw = 0.0;
          for (var b = 0u; b < BATCH; b++) { gw += scratch[sb + s_dw() + j * BATCH + b]; }
          g += gw * params[pb + i] / dec_norm[j];
        }
      } else {
        // b_dec[d] = sum_t sum_b dr_t[b][d] - [apply] sum_j W_enc[d][j] sum_b dpre[b][j]
        let d = i - off_b_dec();
        for (var t = 0u; t < n_terms; t++) {
          let dr = sb + s_dr() + t * D_IN * BATCH + d * BATCH;
          for (var b = 0u; b < BATCH; b++) { g += scratch[dr + b]; }
        }
        if (info.apply_b_dec_to_input != 0u) {
          for (var j = 0u; j < D_SAE; j++) {
            var gj = 0.0;
            for (var b = 0u; b < BATCH; b++) { gj += scratch[sb + s_dpre() + j * BATCH + b]; }
            g -= params[pb + d * D_SAE + j] * gj;
          }
        }
      }
      opt[gb + i] = g;
      sumsq += g * g;
    }
    // Loss record slots: [recon_t], [l1_t], summed over rows.
    for (var s = tid; s < 2u * T_MAX; s += WG) {
      var acc = 0.0;
      for (var b = 0u; b < BATCH; b++) { acc += scratch[sb + s_rowloss() + s * BATCH + b]; }
      loss_acc[s] = acc;
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

    // ---- Phase D: global norm, divergence check, clip and Adam (one thread per parameter).
    var total_sq = 0.0;
    for (var i = 0u; i < WG; i++) { total_sq += partial[i]; }
    let grad_norm = sqrt(total_sq);
    var loss = 0.0;
    for (var s = 0u; s < 2u * T_MAX; s++) { loss += loss_acc[s]; }
    let ok = is_finite(loss) && is_finite(grad_norm);
    if (tid == 0u) {
      let lb = m * LOSS_WORDS;
      losses[lb + LOSS_TOTAL] = loss;
      losses[lb + LOSS_GRAD_NORM] = grad_norm;
      for (var t = 0u; t < MAX_TERMS; t++) {
        losses[lb + LOSS_RECON0 + t] = select(0.0, loss_acc[t], t < T_MAX);
        losses[lb + LOSS_L10 + t] = select(0.0, loss_acc[T_MAX + t], t < T_MAX);
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
      for (var i = tid; i < P; i += WG) {
        let g = opt[gb + i] * clip;
        let mo = info.beta1 * opt[gb + P + i] + (1.0 - info.beta1) * g;
        let ve = info.beta2 * opt[gb + 2u * P + i] + (1.0 - info.beta2) * g * g;
        opt[gb + P + i] = mo;
        opt[gb + 2u * P + i] = ve;
        params[pb + i] -= step_size * mo / (sqrt(ve) / sqrt_bc2 + info.eps);
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
