// Reconstruction losses of every loss term, their gradient, and the b_dec gradient. Term t of
// model m owns rows [t·B, (t+1)·B) of the [M][T·B][D] stack `rg` (see prefix_recon.wgsl), which
// holds the decoded part stack·W_dec on entry. Included after shaders/lib/model_table.wgsl and
// shaders/lib/step_dims.wgsl.
//
//   recon_loss: e = rg + b_dec − x per row; recon_t = recon_mult_t · mean_b R(e_b) with
//               R = Σ_d e² (RECON_MSE) or ‖e‖₂ (RECON_L2); overwrites rg with ∂loss/∂r_t:
//               recon_mult·2e/B (MSE) or recon_mult·e/(B‖e‖) (L2; 0 where ‖e‖ = 0), and 0 for
//               the rows of empty terms. Writes the loss record's recon slots and its total
//               (Σ recon + Σ l1: runs after sparsity_forward has written the l1 slots).
//   bdec_grad:  grads b_dec[m][d] = Σ_{rows} rg[m][row][d]  (every term adds b_dec, including
//               the end-0 b_dec term)  − [apply_b_dec_to_input] · Σ_j W_enc[m][d][j] · grads b_enc[m][j]
//               (x_in = x − b_dec: Σ_b ∂L/∂x_in = W_enc · ∂L/∂b_enc; needs grads b_enc first).
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims    uniform StepDims
//   1 models  storage read  [M] ModelInfo              (both)
//   2 x       storage read  [M][B][D]                  (recon_loss)
//   3 params  storage read  [M][P]                     (both)
//   4 rg      storage rw    [M][T·B][D]                (both)
//   5 losses  storage rw    [M][LOSS_WORDS]            (recon_loss)
//   6 grads   storage rw    [M][P]                     (bdec_grad)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   recon_loss: one workgroup per model, rows strided over its WG invocations (WG a power of
//               two): M workgroups;
//   bdec_grad:  one invocation per (m, d): ceil(M·D / WG) workgroups.

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> rg: array<f32>;
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;

override WG: u32 = 64u;

var<workgroup> partial: array<f32, WG * MAX_TERMS>;

@compute @workgroup_size(WG)
fn recon_loss(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let m = wid.x + wid.y * nwg.x;
  if (m >= dims.models) {
    return;
  }
  let num_terms = models[m].num_terms;
  let rows = dims.terms * dims.batch;
  let inv_b = 1.0 / f32(dims.batch);
  let bias = m * dims.param_size + dims.b_dec;
  var sums: array<f32, MAX_TERMS>;
  for (var row = lid; row < rows; row += WG) {
    let t = row / dims.batch;
    let b = row - t * dims.batch;
    let base = (m * rows + row) * dims.d_in;
    if (t >= num_terms) {
      for (var d = 0u; d < dims.d_in; d++) {
        rg[base + d] = 0.0;
      }
      continue;
    }
    let term = models[m].terms[t];
    let xb = (m * dims.batch + b) * dims.d_in;
    if (term.recon_kind == RECON_MSE) {
      // One pass: the gradient 2·mult·e/B does not depend on the row's loss.
      let coef = 2.0 * term.recon_mult * inv_b;
      var sq = 0.0;
      for (var d = 0u; d < dims.d_in; d++) {
        let e = rg[base + d] + params[bias + d] - x[xb + d];
        sq += e * e;
        rg[base + d] = coef * e;
      }
      sums[t] += sq;
      continue;
    }
    // L2: the row norm first, then the gradient mult·e/(B·‖e‖).
    var sq = 0.0;
    for (var d = 0u; d < dims.d_in; d++) {
      let e = rg[base + d] + params[bias + d] - x[xb + d];
      sq += e * e;
    }
    let norm = sqrt(sq);
    sums[t] += norm;
    var coef = 0.0;
    if (norm > 0.0) {
      coef = term.recon_mult * inv_b / norm;
    }
    for (var d = 0u; d < dims.d_in; d++) {
      let e = rg[base + d] + params[bias + d] - x[xb + d];
      rg[base + d] = coef * e;
    }
  }
  for (var t = 0u; t < MAX_TERMS; t++) {
    partial[lid * MAX_TERMS + t] = sums[t];
  }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var t = 0u; t < MAX_TERMS; t++) {
        partial[lid * MAX_TERMS + t] += partial[(lid + s) * MAX_TERMS + t];
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let record = m * LOSS_WORDS;
    var total = 0.0;
    for (var t = 0u; t < MAX_TERMS; t++) {
      var value = 0.0;
      if (t < num_terms && models[m].terms[t].recon_mult != 0.0) {
        value = models[m].terms[t].recon_mult * partial[t] * inv_b;
      }
      losses[record + LOSS_RECON + t] = value;
      total += value + losses[record + LOSS_L1 + t];
    }
    losses[record + LOSS_TOTAL] = total;
  }
}

@compute @workgroup_size(WG)
fn bdec_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
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
  let block = m * dims.param_size;
  if (models[m].apply_b_dec_to_input != 0u) {
    var input = 0.0;
    for (var j = 0u; j < dims.d_sae; j++) {
      input += params[block + dims.w_enc + d * dims.d_sae + j] * grads[block + dims.b_enc + j];
    }
    sum -= input;
  }
  grads[block + dims.b_dec + d] = sum;
}
