// StepDims: the uniform shared by the model-aware kernels of the kernel set (sparsity,
// prefix_recon, recon_loss, optimizer): the sizes of one training step and the parameter layout
// of one model (offsets in floats within a model's block). Packed by stepDimsWords() in
// src/kernels/step_dims.ts: keep the field order in sync. Also the linear invocation index of a
// dispatch folded into (x, y) workgroups; includers declare `override WG` (their workgroup size).

struct StepDims {
  models: u32,
  batch: u32,
  d_in: u32,
  d_sae: u32,
  terms: u32,
  param_size: u32,
  w_enc: u32,
  b_enc: u32,
  w_dec: u32,
  b_dec: u32,
}

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}
