// The learning-rate schedule shared by both training paths (its CPU twin: scheduleLrFactor in
// src/sae/train_settings.ts): the factor on each model's lr at 0-based step `step` of a run of
// `total` steps, a linear warm-up (step + 1) / warmup over the first `warmup` steps, times a linear
// decay from 1 to `end_factor` over the last `decay` steps (end_factor + (1 − end_factor) ·
// (total − step) / decay). Included by shaders/optimizer.wgsl and shaders/train_fused.wgsl.

fn schedule_lr_factor(step: u32, total: u32, warmup: u32, decay: u32, end_factor: f32) -> f32 {
  var f = 1.0;
  if (warmup > 0u && step < warmup) {
    f = f32(step + 1u) / f32(warmup);
  }
  if (decay > 0u && step + decay >= total) {
    let left = f32(total - step) / f32(decay);
    f = f * (end_factor + (1.0 - end_factor) * left);
  }
  return f;
}
