// Reconstruction losses of every loss term, their gradient, the loss record, and the b_dec
// gradient. Term t of model m owns rows [t·B, (t+1)·B) of the [M][T·B][D] stack `rg` (see
// prefix_recon.wgsl), which holds the decoded part (stack or acts)·W_dec on entry. Included after
// the generated model table and StepDims and shaders/lib/step_dims.wgsl, with
// shaders/lib/workgroup_sum.wgsl and shaders/lib/bdec_input_grad.wgsl.
//
//   recon_loss: one row of one term: e = rg + b_dec − x; term_rows[m][t][b] = R(e) with
//               R = Σ_d e² (RECON_MSE) or ‖e‖₂ (RECON_L2); overwrites the row of rg with
//               ∂loss/∂r_t: recon_mult·2e/B (MSE) or recon_mult·e/(B‖e‖) (L2; 0 where ‖e‖ = 0),
//               and 0 (both) for the rows of empty terms.
//   loss_total: the loss record of each model from the rows: recon_t = recon_mult_t · mean_b
//               term_rows[m][t], l1_t = l1_mult_t · mean_b term_rows[m][T + t] (written by
//               sparsity_forward), total = Σ recon + Σ l1.
//   bdec_grad:  grads b_dec[m][d] = Σ_{rows} rg[m][row][d]  (every term adds b_dec, including
//               the end-0 b_dec term)  − [apply_b_dec_to_input] · Σ_j W_enc[m][d][j] · grads b_enc[m][j]
//               (x_in = x − b_dec: Σ_b ∂L/∂x_in = W_enc · ∂L/∂b_enc; needs grads b_enc first).
// Loop trip counts: 2·D per recon_loss invocation, 2T·ceil(B·RECON_PARTS / WG) per loss_total
// thread (plus MAX_TERMS), T·B + S
// per bdec_grad invocation.
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims      uniform StepDims
//   1 models    storage read  [M] ModelInfo              (all)
//   2 x         storage read  [M][B][D]                  (recon_loss)
//   3 params    storage read  [M][P]                     (recon_loss, bdec_grad)
//   4 rg        storage rw    [M][T·B][D]                (recon_loss, bdec_grad)
//   5 losses    storage rw    [M][LOSS_WORDS]            (loss_total)
//   6 grads     storage rw    [M][P]                     (bdec_grad)
//   7 term_rows storage rw    [M][2T][B] per-row recon (t) and sparsity (T + t) values
//                                                        (recon_loss, loss_total)
//   8 recon_parts storage rw  [M][T][B][RECON_PARTS] Σ e² partial sums of the FUSED_TERMS
//                                                        (loss_total)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   recon_loss: one invocation per (m, t, b): ceil(M·T·B / WG) workgroups;
//   loss_total: one workgroup per model (WG a power of two): M workgroups;
//   bdec_grad:  one invocation per (m, d): ceil(M·D / WG) workgroups.

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> rg: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;
@group(0) @binding(7) var<storage, read_write> term_rows: array<f32>;
@group(0) @binding(8) var<storage, read_write> recon_parts: array<f32>;

override WG: u32 = 64u;
/**
 * Terms (bit t) whose rows the decode product's MSE epilogue already finished (matmul_blocked
 * RESIDUAL): recon_loss leaves them alone and loss_total sums their RECON_PARTS partial sums per
 * row from recon_parts [M][T][B][RECON_PARTS] instead of term_rows.
 */
override FUSED_TERMS: u32 = 0u;
override RECON_PARTS: u32 = 1u;


@compute @workgroup_size(WG)
fn recon_loss(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  let rows = dims.terms * dims.batch;
  if (i >= dims.models * rows) {
    return;
  }
  let m = i / rows;
  let row = i - m * rows;
  let t = row / dims.batch;
  let b = row - t * dims.batch;
  let base = i * dims.d_in;
  let out = (m * 2u * dims.terms + t) * dims.batch + b;
  if (((FUSED_TERMS >> t) & 1u) != 0u) {
    return;
  }
  if (t >= models[m].num_terms) {
    for (var d = 0u; d < dims.d_in; d++) {
      rg[base + d] = 0.0;
    }
    term_rows[out] = 0.0;
    return;
  }
  let term = models[m].terms[t];
  let xb = (m * dims.batch + b) * dims.d_in;
  let bias = m * dims.param_size + dims.b_dec;
  let inv_b = 1.0 / f32(dims.batch);
  var sq = 0.0;
  for (var d = 0u; d < dims.d_in; d++) {
    let e = rg[base + d] + params[bias + d] - x[xb + d];
    sq += e * e;
  }
  // MSE: 2·mult·e/B; L2: mult·e/(B·‖e‖) (0 for a zero row).
  var value = sq;
  var coef = 2.0 * term.recon_mult * inv_b;
  if (term.recon_kind != RECON_MSE) {
    value = sqrt(sq);
    coef = select(0.0, term.recon_mult * inv_b / value, value > 0.0);
  }
  term_rows[out] = value;
  for (var d = 0u; d < dims.d_in; d++) {
    let e = rg[base + d] + params[bias + d] - x[xb + d];
    rg[base + d] = coef * e;
  }
}


@compute @workgroup_size(WG)
fn loss_total(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let m = wid.x + wid.y * nwg.x;
  if (m >= dims.models) {
    return;
  }
  let num_terms = models[m].num_terms;
  let inv_b = 1.0 / f32(dims.batch);
  let record = m * LOSS_WORDS;
  if (lid == 0u) {
    for (var t = 0u; t < MAX_TERMS; t++) {
      losses[record + LOSS_RECON + t] = 0.0;
      losses[record + LOSS_L1 + t] = 0.0;
    }
  }
  var total = 0.0;
  for (var slot = 0u; slot < 2u * dims.terms; slot++) {
    let t = slot % dims.terms;
    let l1 = slot >= dims.terms;
    var sum = 0.0;
    if (t < num_terms && !l1 && ((FUSED_TERMS >> t) & 1u) != 0u) {
      let parts = (m * dims.terms + t) * dims.batch * RECON_PARTS;
      for (var k = lid; k < dims.batch * RECON_PARTS; k += WG) {
        sum += recon_parts[parts + k];
      }
    } else if (t < num_terms) {
      let rows = (m * 2u * dims.terms + select(0u, dims.terms, l1) + t) * dims.batch;
      for (var b = lid; b < dims.batch; b += WG) {
        sum += term_rows[rows + b];
      }
    }
    partial[lid] = sum;
    reduce_partial(lid);
    if (lid == 0u) {
      var value = 0.0;
      if (t < num_terms) {
        let mult = select(models[m].terms[t].recon_mult, models[m].terms[t].l1_mult, l1);
        if (mult != 0.0) {
          value = mult * partial[0] * inv_b;
        }
        losses[record + select(LOSS_RECON, LOSS_L1, l1) + t] = value;
      }
      total += value;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    losses[record + LOSS_TOTAL] = total;
  }
}

@compute @workgroup_size(WG)
fn bdec_grad(
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
  let rows = dims.terms * dims.batch;
  var sum = 0.0;
  for (var row = 0u; row < rows; row++) {
    sum += rg[(m * rows + row) * dims.d_in + d];
  }
  grads[m * dims.param_size + dims.b_dec + d] = sum - bdec_input_grad(m, d);
}
