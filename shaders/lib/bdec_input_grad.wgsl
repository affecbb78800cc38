// b_dec's gradient through the encoder's input x − b_dec: when a model applies b_dec to the input,
// ∂L/∂b_dec[d] gains −Σ_j W_enc[d][j] ∂L/∂b_enc[j] (∂L/∂b_enc = Σ_b ∂L/∂pre). Included by
// shaders/recon_loss.wgsl (bdec_grad) and shaders/latent_decoder.wgsl (latent_bdec_grad), which
// declare `dims` (StepDims), `models`, `params` and `grads` (with grads b_enc already written).

/** The encoder's part of ∂L/∂b_dec[d] of model m (0 when b_dec is not applied to the input). */
fn bdec_input_grad(m: u32, d: u32) -> f32 {
  if (models[m].apply_b_dec_to_input == 0u) {
    return 0.0;
  }
  let block = m * dims.param_size;
  var sum = 0.0;
  for (var j = 0u; j < dims.d_sae; j++) {
    sum += params[block + dims.w_enc + d * dims.d_sae + j] * grads[block + dims.b_enc + j];
  }
  return sum;
}
