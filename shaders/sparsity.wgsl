// The sparsity penalty of every loss term, decoder-norm weighted:
//
//   l1_t = l1_mult_t · mean_b ‖ v_b[l1_start_t : l1_end_t] ‖_p,   v_bj = w_j · acts[b][j],
//
// with w_j = ‖W_dec[j]‖₂ when the model's l1_by_decoder_norm is set (else 1; the norm is not
// detached, so the penalty also has a gradient w.r.t. W_dec), and p the model's lp_norm.
// Included after the generated model table and StepDims (src/sae/model_table.ts, src/kernels/step_dims.ts) and shaders/lib/step_dims.wgsl.
//
//   row_norms:             norms[m][j] = ‖W_dec[m][j]‖₂
//   sparsity_forward:      one row: term_rows[m][T + t][b] = ‖v_b[window_t]‖_p (0 for terms
//                          without a penalty; the loss record's l1 slots are summed from them by
//                          loss_total in recon_loss.wgsl); gv[m][b][j] = ∂(Σ_t l1_t)/∂v_bj and
//                          g_acts[m][b][j] = gv · w_j (overwrites: the first writer of g_acts)
//   sparsity_decoder_grad: grads W_dec[m][j] += (Σ_b gv_bj · acts_bj) · W_dec[m][j] / w_j
//                          (models with l1_by_decoder_norm and w_j > 0 only)
// ∂‖v‖_p/∂v_j is sign(v_j) for p = 1, v_j/‖v‖ for p = 2, sign(v_j)·(|v_j|/‖v‖)^(p−1) otherwise;
// 0 where v_j = 0 or ‖v‖ = 0 (torch's convention).
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims    uniform StepDims
//   1 models  storage read  [M] ModelInfo                    (forward, decoder_grad)
//   2 params  storage read  [M][P] parameters                (row_norms, decoder_grad)
//   3 acts    storage read  [M][B][S]                        (forward, decoder_grad)
//   4 norms   storage rw    [M][S]                           (all)
//   5 gv      storage rw    [M][B][S]                        (forward, decoder_grad)
//   6 g_acts  storage rw    [M][B][S]                        (forward)
//   7 term_rows storage rw  [M][2T][B] per-row term values   (forward: rows T..2T−1)
//   8 grads   storage rw    [M][P]                           (decoder_grad)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   row_norms, sparsity_decoder_grad: one invocation per (m, j): ceil(M·S / WG) workgroups;
//   sparsity_forward: one invocation per (m, b): ceil(M·B / WG) workgroups.
// Loop trip counts: D per row_norms invocation, 2S + 2·Σ_t window_t per sparsity_forward
// invocation, B + D per sparsity_decoder_grad invocation.

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> acts: array<f32>;
@group(0) @binding(4) var<storage, read_write> norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> gv: array<f32>;
@group(0) @binding(6) var<storage, read_write> g_acts: array<f32>;
@group(0) @binding(7) var<storage, read_write> term_rows: array<f32>;
@group(0) @binding(8) var<storage, read_write> grads: array<f32>;

override WG: u32 = 64u;

/** w_j of model m: its decoder row norm, or 1 without decoder-norm weighting. */
fn weight(m: u32, j: u32, by_norm: bool) -> f32 {
  if (by_norm) {
    return norms[m * dims.d_sae + j];
  }
  return 1.0;
}

/** ∂‖v‖_p/∂v_j given v_j and ‖v‖_p. */
fn norm_derivative(v: f32, n: f32, p: f32) -> f32 {
  if (v == 0.0) {
    return 0.0;
  }
  if (p == 1.0) {
    return sign(v);
  }
  if (n == 0.0) {
    return 0.0;
  }
  if (p == 2.0) {
    return v / n;
  }
  return sign(v) * pow(abs(v) / n, p - 1.0);
}

@compute @workgroup_size(WG)
fn row_norms(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  if (i >= dims.models * dims.d_sae) {
    return;
  }
  let m = i / dims.d_sae;
  let j = i - m * dims.d_sae;
  let base = m * dims.param_size + dims.w_dec + j * dims.d_in;
  var sq = 0.0;
  for (var d = 0u; d < dims.d_in; d++) {
    let w = params[base + d];
    sq += w * w;
  }
  norms[i] = sqrt(sq);
}

@compute @workgroup_size(WG)
fn sparsity_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  if (i >= dims.models * dims.batch) {
    return;
  }
  let m = i / dims.batch;
  let b = i - m * dims.batch;
  let num_terms = models[m].num_terms;
  let p = models[m].lp_norm;
  let by_norm = models[m].l1_by_decoder_norm != 0u;
  let inv_b = 1.0 / f32(dims.batch);
  let row = i * dims.d_sae;
  let out = (m * 2u * dims.terms + dims.terms) * dims.batch + b;
  for (var j = 0u; j < dims.d_sae; j++) {
    gv[row + j] = 0.0;
  }
  for (var t = 0u; t < dims.terms; t++) {
    var n = 0.0;
    if (t < num_terms && models[m].terms[t].l1_mult != 0.0) {
      let term = models[m].terms[t];
      // The term's ‖v_b[window]‖_p, then its gradient added over the window.
      var acc = 0.0;
      for (var j = term.l1_start; j < term.l1_end; j++) {
        let v = abs(weight(m, j, by_norm) * acts[row + j]);
        if (p == 1.0) {
          acc += v;
        } else if (p == 2.0) {
          acc += v * v;
        } else if (v > 0.0) {
          acc += pow(v, p);
        }
      }
      n = acc;
      if (p == 2.0) {
        n = sqrt(acc);
      } else if (p != 1.0 && acc > 0.0) {
        n = pow(acc, 1.0 / p);
      }
      let coef = term.l1_mult * inv_b;
      for (var j = term.l1_start; j < term.l1_end; j++) {
        let v = weight(m, j, by_norm) * acts[row + j];
        gv[row + j] += coef * norm_derivative(v, n, p);
      }
    }
    term_rows[out + t * dims.batch] = n;
  }
  for (var j = 0u; j < dims.d_sae; j++) {
    g_acts[row + j] = gv[row + j] * weight(m, j, by_norm);
  }
}

@compute @workgroup_size(WG)
fn sparsity_decoder_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  if (i >= dims.models * dims.d_sae) {
    return;
  }
  let m = i / dims.d_sae;
  let j = i - m * dims.d_sae;
  let w = norms[i];
  if (models[m].l1_by_decoder_norm == 0u || w == 0.0) {
    return;
  }
  var gw = 0.0;
  for (var b = 0u; b < dims.batch; b++) {
    let r = (m * dims.batch + b) * dims.d_sae + j;
    gw += gv[r] * acts[r];
  }
  let scale = gw / w;
  let base = m * dims.param_size + dims.w_dec + j * dims.d_in;
  for (var d = 0u; d < dims.d_in; d++) {
    grads[base + d] += scale * params[base + d];
  }
}
