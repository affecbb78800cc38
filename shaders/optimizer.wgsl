// The optimiser half of a training step, per model, as SAELens's trainer with torch's Adam:
//
//   remove_parallel: if normalize_decoder: g_Wdec[j] −= (g_Wdec[j] · W_dec[j]) W_dec[j]
//                    (SAELens's form, exact for unit rows); before the norm is taken.
//   grad_norm:       the loss record's grad-norm slot = ‖g‖₂ over all four tensors; a model
//                    whose total loss or gradient norm is not finite gets status = t (t = the
//                    1-based step now running, counter + 1) unless it already diverged.
//   adam:            for models with status 0: g *= min(1, clip/(norm + 1e-6)) (clip_norm 0: off;
//                    the clipped g is written back, like torch's in-place clip), then
//                    m = β1 m + (1−β1) g, v = β2 v + (1−β2) g², p −= lr/(1−β1^t) · m /
//                    (√v / √(1−β2^t) + eps).
//   finish_step:     for models with status 0 and normalize_decoder: W_dec[j] /= ‖W_dec[j]‖
//                    (rows with norm 0 untouched); invocation 0 advances the step counter.
// The step counter (steps completed) lives on the GPU, so a step needs no upload.
// Included after the generated model table and StepDims (src/sae/model_table.ts, src/kernels/step_dims.ts) and shaders/lib/step_dims.wgsl. Non-finite values are detected from the bits.
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims     uniform StepDims
//   1 models   storage read  [M] ModelInfo        (remove_parallel, adam, finish_step)
//   2 params   storage rw    [M][P]               (remove_parallel, adam, finish_step)
//   3 grads    storage rw    [M][P]               (remove_parallel, grad_norm, adam)
//   4 adam_m   storage rw    [M][P]               (adam)
//   5 adam_v   storage rw    [M][P]               (adam)
//   6 losses   storage rw    [M][LOSS_WORDS]      (grad_norm, adam)
//   7 status   storage rw    [M] u32              (all)
//   8 counter  storage rw    [1] u32              (grad_norm, adam, finish_step)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   remove_parallel: one invocation per (m, j): ceil(M·S / WG) workgroups;
//   grad_norm:       one workgroup per model (WG a power of two): M workgroups;
//   adam:            one invocation per parameter: ceil(M·P / WG) workgroups;
//   finish_step:     one invocation per (m, j): ceil(M·S / WG) workgroups (at least 1).

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(5) var<storage, read_write> adam_v: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;
@group(0) @binding(7) var<storage, read_write> status: array<u32>;
@group(0) @binding(8) var<storage, read_write> counter: array<u32>;

override WG: u32 = 64u;

var<workgroup> partial: array<f32, WG>;

/** True for ±inf and NaN, read from the bits (the compiler may assume floats are finite). */
fn not_finite(value: f32) -> bool {
  return (bitcast<u32>(value) & 0x7f800000u) == 0x7f800000u;
}

/** base^e for a non-negative integer e, by squaring (exact 0^e = 0 for e > 0). */
fn pow_int(base: f32, e: u32) -> f32 {
  var result = 1.0;
  var b = base;
  var k = e;
  loop {
    if (k == 0u) {
      break;
    }
    if ((k & 1u) != 0u) {
      result *= b;
    }
    b *= b;
    k >>= 1u;
  }
  return result;
}

@compute @workgroup_size(WG)
fn remove_parallel(
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
  if (models[m].normalize_decoder == 0u || status[m] != 0u) {
    return;
  }
  let base = m * dims.param_size + dims.w_dec + j * dims.d_in;
  var dot = 0.0;
  for (var d = 0u; d < dims.d_in; d++) {
    dot += grads[base + d] * params[base + d];
  }
  for (var d = 0u; d < dims.d_in; d++) {
    grads[base + d] -= dot * params[base + d];
  }
}

@compute @workgroup_size(WG)
fn grad_norm(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let m = wid.x + wid.y * nwg.x;
  if (m >= dims.models) {
    return;
  }
  let base = m * dims.param_size;
  var sq = 0.0;
  for (var k = lid; k < dims.param_size; k += WG) {
    let g = grads[base + k];
    sq += g * g;
  }
  partial[lid] = sq;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(partial[0]);
    let record = m * LOSS_WORDS;
    losses[record + LOSS_GRAD_NORM] = norm;
    let bad = not_finite(norm) || not_finite(losses[record + LOSS_TOTAL]);
    if (bad && status[m] == 0u) {
      status[m] = counter[0] + 1u;
    }
  }
}

@compute @workgroup_size(WG)
fn adam(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  if (i >= dims.models * dims.param_size) {
    return;
  }
  let m = i / dims.param_size;
  if (status[m] != 0u) {
    return;
  }
  let info = models[m];
  var g = grads[i];
  if (info.clip_norm > 0.0) {
    let coef = info.clip_norm / (losses[m * LOSS_WORDS + LOSS_GRAD_NORM] + 1e-6);
    if (coef < 1.0) {
      g *= coef;
      grads[i] = g;
    }
  }
  let t = counter[0] + 1u;
  let mom = adam_m[i] + (1.0 - info.beta1) * (g - adam_m[i]);
  let vel = info.beta2 * adam_v[i] + (1.0 - info.beta2) * g * g;
  adam_m[i] = mom;
  adam_v[i] = vel;
  let step_size = info.lr / (1.0 - pow_int(info.beta1, t));
  let bias2_sqrt = sqrt(1.0 - pow_int(info.beta2, t));
  params[i] -= step_size * mom / (sqrt(vel) / bias2_sqrt + info.eps);
}

@compute @workgroup_size(WG)
fn finish_step(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  if (i == 0u) {
    counter[0] = counter[0] + 1u;
  }
  if (i >= dims.models * dims.d_sae) {
    return;
  }
  let m = i / dims.d_sae;
  let j = i - m * dims.d_sae;
  if (models[m].normalize_decoder == 0u || status[m] != 0u) {
    return;
  }
  let base = m * dims.param_size + dims.w_dec + j * dims.d_in;
  var sq = 0.0;
  for (var d = 0u; d < dims.d_in; d++) {
    sq += params[base + d] * params[base + d];
  }
  let norm = sqrt(sq);
  if (norm > 0.0) {
    for (var d = 0u; d < dims.d_in; d++) {
      params[base + d] /= norm;
    }
  }
}
