// The latent-input formulation of the decoder and its MSE terms (x = f·E): every residual of a
// step lies in the span of one model's basis rows, so the losses and gradients come from Gram
// quantities and per-row coefficients instead of [B][D] passes (src/sae/kernel_step.ts builds the
// products around these two passes). Included after the generated model table and StepDims and
// shaders/lib/step_dims.wgsl, with shaders/lib/bdec_input_grad.wgsl. F = features per row, S = d_sae, K = the basis rows (K_ROWS).
//
// Basis of model m, `[K][D]` rows: W_dec (rows [0, S)), b_dec (row S), zeros up to E_OFF, −E
// (rows [E_OFF, E_OFF + F)), zeros up to K. Row b's coefficients are c_t = [acts masked to
// [0, end_t), 1, 0…, f_b, 0…]: term t's residual
// r_t = acts[:, :end_t]·W_dec + b_dec − f·E = c_t·basis. With gram = basis·basisᵀ (`[K][K]`),
// z = b_dec − f·E (c_z = c_t without the acts), v = c_z·gram = gram[S] + u (u = f·gram[E rows],
// products) and h_t = acts[:, :end_t]·gram[:end_t, :end_t] (products):
//
//   latent_recon: one row b of model m: term_rows[m][t][b] = ‖r_t‖² (0 for t ≥ num_terms),
//               ‖r_t‖² = Σ_{k<end_t} acts_k (h_t[k] + 2 v[k]) + ‖z‖², ‖z‖² = v[S] + Σ_i f_i v[E_OFF + i];
//               and for each latent j, in place over g_acts (which holds ∂l1/∂acts from
//               sparsity_forward), with r_t·W_dec[j] = h_t[j] + v[j]:
//               g_pre[j] = [acts_j > 0] · (g_acts[j] + Σ_t 2·recon_mult_t/B · [j live in t] · (h_t[j] + v[j])).
//   latent_coeffs: the coefficients Q `[S + 1][K]` of grads [W_dec; b_dec] = Q·basis (a product):
//               with w_t = 2·recon_mult_t/B over the model's terms, saa = actsᵀ·acts `[S][S]`,
//               saf = actsᵀ·f `[S][F]`, s_a = Σ_b acts, s_f = Σ_b f:
//               Q[j < S][k]  = Σ_t w_t [j live in t] · (saa[j][k]·[k < end_t] (k < S), s_a[j] (k = S),
//                              saf[j][i] (k = E_OFF + i))
//               Q[S][k]      = Σ_t w_t · (s_a[k]·[k < end_t] (k < S), B (k = S), s_f[i] (k = E_OFF + i))
//               and 0 in the padding columns. "j live in t": term_trains(t, j), i.e.
//               detach_below_t ≤ j < end_t.
//   latent_bdec_grad: grads b_dec[m][d] = Σ_k Q[S][k]·basis[k][d]
//               − [apply_b_dec_to_input] · Σ_j W_enc[m][d][j] · grads b_enc[m][j]
//               (the encoder's part, as in recon_loss.wgsl's bdec_grad; needs grads b_enc first).
// Loop trip counts: 2·T·S + F + T per latent_recon invocation; B + T per latent_coeffs invocation;
// K + S per latent_bdec_grad invocation.
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims      uniform StepDims
//   1 models    storage read  [M] ModelInfo                 (all)
//   2 gram      storage read  [M][K][K]                     (latent_recon)
//   3 u         storage read  [M][B][K]                     (latent_recon)
//   4 h         storage read  [M][T][B][S]                  (latent_recon)
//   5 acts      storage read  [M][B][S]                     (latent_recon, latent_coeffs)
//   6 features  storage read  [M][B][F]                     (latent_recon, latent_coeffs)
//   7 g_acts    storage rw    [M][B][S]                     (latent_recon)
//   8 term_rows storage rw    [M][2T][B]                    (latent_recon: rows [0, T))
//   9 saa       storage read  [M][S][S]                     (latent_coeffs)
//  10 saf       storage read  [M][S][F]                     (latent_coeffs)
//  11 coeffs    storage rw    [M][S + 1][K]                 (latent_coeffs; latent_bdec_grad reads)
//  12 params    storage read  [M][P]                        (latent_bdec_grad)
//  13 basis     storage read  [M][K][D]                     (latent_bdec_grad)
//  14 grads     storage rw    [M][P]                        (latent_bdec_grad)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   latent_recon:  one invocation per (m, b): ceil(M·B / WG) workgroups;
//   latent_coeffs: one invocation per (m, j, k): ceil(M·(S + 1)·K / WG) workgroups;
//   latent_bdec_grad: one invocation per (m, d): ceil(M·D / WG) workgroups.

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read> gram: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read> h: array<f32>;
@group(0) @binding(5) var<storage, read> acts: array<f32>;
@group(0) @binding(6) var<storage, read> features: array<f32>;
@group(0) @binding(7) var<storage, read_write> g_acts: array<f32>;
@group(0) @binding(8) var<storage, read_write> term_rows: array<f32>;
@group(0) @binding(9) var<storage, read> saa: array<f32>;
@group(0) @binding(10) var<storage, read> saf: array<f32>;
@group(0) @binding(11) var<storage, read_write> coeffs: array<f32>;
@group(0) @binding(12) var<storage, read> params: array<f32>;
@group(0) @binding(13) var<storage, read> basis: array<f32>;
@group(0) @binding(14) var<storage, read_write> grads: array<f32>;

override WG: u32 = 64u;
/** Features per row F. */
override N_FEATURES: u32 = 1u;
/** The first −E row of the basis (a multiple of 4, > S). */
override E_OFF: u32 = 4u;
/** Basis rows K (a multiple of 4, ≥ E_OFF + F). */
override K_ROWS: u32 = 8u;

/** v[k] = gram[S][k] + u[b][k]: the row's c_z·gram. */
fn v_at(g: u32, ub: u32, k: u32) -> f32 {
  return gram[g + dims.d_sae * K_ROWS + k] + u[ub + k];
}

@compute @workgroup_size(WG)
fn latent_recon(
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
  let S = dims.d_sae;
  let g = m * K_ROWS * K_ROWS;
  let ub = i * K_ROWS;
  let ab = i * S;
  let fb = i * N_FEATURES;
  let num_terms = models[m].num_terms;
  var zz = v_at(g, ub, S);
  for (var f = 0u; f < N_FEATURES; f++) {
    zz += features[fb + f] * v_at(g, ub, E_OFF + f);
  }
  for (var t = 0u; t < dims.terms; t++) {
    var sq = 0.0;
    if (t < num_terms) {
      let hb = ((m * dims.terms + t) * dims.batch + b) * S;
      for (var k = 0u; k < models[m].terms[t].end; k++) {
        sq += acts[ab + k] * (h[hb + k] + 2.0 * v_at(g, ub, k));
      }
      sq += zz;
    }
    term_rows[(m * 2u * dims.terms + t) * dims.batch + b] = sq;
  }
  let inv_b = 1.0 / f32(dims.batch);
  for (var j = 0u; j < S; j++) {
    var grad = g_acts[ab + j];
    let vj = v_at(g, ub, j);
    for (var t = 0u; t < num_terms; t++) {
      let term = models[m].terms[t];
      if (term_trains(term, j)) {
        let hb = ((m * dims.terms + t) * dims.batch + b) * S;
        grad += 2.0 * term.recon_mult * inv_b * (h[hb + j] + vj);
      }
    }
    g_acts[ab + j] = select(0.0, grad, acts[ab + j] > 0.0);
  }
}

@compute @workgroup_size(WG)
fn latent_coeffs(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  let S = dims.d_sae;
  let per_model = (S + 1u) * K_ROWS;
  if (i >= dims.models * per_model) {
    return;
  }
  let m = i / per_model;
  let j = (i - m * per_model) / K_ROWS;
  let k = i - m * per_model - j * K_ROWS;
  let is_feature = k >= E_OFF && k < E_OFF + N_FEATURES;
  if (k > S && !is_feature) {
    coeffs[i] = 0.0;
    return;
  }
  // The term weight of this entry: Σ_t w_t over the terms where row j (b_dec: every term) is live
  // and, for an acts column k, k < end_t.
  var weight = 0.0;
  for (var t = 0u; t < models[m].num_terms; t++) {
    let term = models[m].terms[t];
    if ((j == S || term_trains(term, j)) && (k >= S || k < term.end)) {
      weight += term.recon_mult;
    }
  }
  let rows = m * dims.batch;
  var stat = 0.0;
  if (j < S && k < S) {
    stat = saa[(m * S + j) * S + k];
  } else if (j < S && is_feature) {
    stat = saf[(m * S + j) * N_FEATURES + k - E_OFF];
  } else if (j == S && k == S) {
    stat = f32(dims.batch);
  } else if (is_feature) {
    for (var b = 0u; b < dims.batch; b++) {
      stat += features[(rows + b) * N_FEATURES + k - E_OFF];
    }
  } else {
    // Σ_b acts[b][latent]: latent j of the b_dec column, or k of the b_dec row.
    let latent = select(k, j, j < S);
    for (var b = 0u; b < dims.batch; b++) {
      stat += acts[(rows + b) * S + latent];
    }
  }
  coeffs[i] = 2.0 * weight * stat / f32(dims.batch);
}

@compute @workgroup_size(WG)
fn latent_bdec_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  if (i >= dims.models * dims.d_in) {
    return;
  }
  let m = i / dims.d_in;
  let d = i - m * dims.d_in;
  let q = (m * (dims.d_sae + 1u) + dims.d_sae) * K_ROWS;
  let rows = m * K_ROWS * dims.d_in + d;
  var sum = 0.0;
  for (var k = 0u; k < K_ROWS; k++) {
    sum += coeffs[q + k] * basis[rows + k * dims.d_in];
  }
  grads[m * dims.param_size + dims.b_dec + d] = sum - bdec_input_grad(m, d);
}
