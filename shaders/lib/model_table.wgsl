// Per-model description shared by the training kernels: one `ModelInfo` per model, packed by
// src/sae/model_table.ts (keep the two in sync: 80 words per model).
//
// A model's loss is a list of up to MAX_TERMS terms (src/sae/loss_plan.ts): term t reconstructs
// r_t = sum_{j<end} acts_j W_dec[j] + b_dec (latents below detach_below carry no gradient) and adds
// recon_mult * R(r_t - x) + l1_mult * mean_b || w * acts[b, l1_start:l1_end] ||_p.
//
// Includers declare `var<storage, read> models: array<ModelInfo>` themselves.

const MAX_TERMS: u32 = 8u;
const RECON_MSE: u32 = 0u;
const RECON_L2: u32 = 1u;

struct LossTerm {
  end: u32,
  detach_below: u32,
  l1_start: u32,
  l1_end: u32,
  recon_kind: u32, // RECON_MSE or RECON_L2
  recon_mult: f32,
  l1_mult: f32,
  _pad: u32,
}

struct ModelInfo {
  num_terms: u32,
  lp_norm: f32,
  l1_by_decoder_norm: u32,   // 1: weight activations by ||W_dec[j]|| in the penalty
  apply_b_dec_to_input: u32, // 1: encode x - b_dec
  normalize_decoder: u32,    // 1: unit-norm decoder rows, gradient parallel to them removed
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  clip_norm: f32,            // 0: no clipping
  data_group: u32,           // which data stream (tree, seed) the model trains on
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  _pad3: u32,
  _pad4: u32,
  terms: array<LossTerm, 8>,
}

// Loss record per model (LOSS_WORDS floats): [total, grad_norm, recon[MAX_TERMS], l1[MAX_TERMS]].
const LOSS_WORDS: u32 = 18u;
const LOSS_TOTAL: u32 = 0u;
const LOSS_GRAD_NORM: u32 = 1u;
const LOSS_RECON0: u32 = 2u;
const LOSS_L10: u32 = 10u;
