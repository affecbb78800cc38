// The optimiser half of a training step, per model, as SAELens's trainer with torch's Adam:
//
//   remove_parallel: if normalize_decoder: g_Wdec[j] −= (g_Wdec[j] · W_dec[j]) W_dec[j]
//                    (SAELens's form, exact for unit rows); before the norm is taken.
//   grad_norm_partial: Σ g² over chunks of NORM_CHUNK parameters of each model, into the scratch.
//   grad_norm:       the loss record's grad-norm slot = ‖g‖₂ over all four tensors (the chunks'
//                    sum); a model whose total loss or gradient norm is not finite gets status = t
//                    (t = the 1-based step now running, counter + 1) unless it already diverged.
//                    Then the model's step coefficients, once: the clip factor
//                    min(1, clip/(norm + 1e-6)) (clip_norm 0: 1), lr_t/(1−β1^t) and √(1−β2^t),
//                    where lr_t = lr · the schedule's factor at step t − 1 (linear warm-up from
//                    lr/warmup, linear decay to lr_end_factor · lr over the last decay steps).
//   adam:            for models with status 0, four parameters per invocation: g *= clip factor
//                    (the clipped g is written back, like torch's in-place clip), then
//                    m = β1 m + (1−β1) g, v = β2 v + (1−β2) g², p −= lr_t/(1−β1^t) · m /
//                    (√v / √(1−β2^t) + eps).
//   finish_step:     for models with status 0 and normalize_decoder: W_dec[j] /= ‖W_dec[j]‖
//                    (rows with norm 0 untouched); invocation 0 advances the step counter.
// The step counter (steps completed) lives on the GPU, so a step needs no upload.
// Included after the generated model table, StepDims and LrSchedule (src/sae/model_table.ts,
// src/kernels/step_dims.ts, src/kernels/optimizer.ts), shaders/lib/step_dims.wgsl and
// shaders/lib/lr_schedule.wgsl. Non-finite
// values are detected from the bits. Every loop's trip count is bounded whatever the sizes:
// NORM_CHUNK / WG per invocation of grad_norm_partial, ceil(P / NORM_CHUNK) / WG of grad_norm
// (the chunks of one model), d_in of remove_parallel and finish_step, 4 of adam.
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims     uniform StepDims
//   1 models   storage read  [M] ModelInfo        (remove_parallel, adam, finish_step)
//   2 params   storage rw    [M][P]               (remove_parallel, adam, finish_step)
//   3 grads    storage rw    [M][P]               (remove_parallel, grad_norm, adam)
//   4 adam_m   storage rw    [M][P]               (adam)
//   5 adam_v   storage rw    [M][P]               (adam)
//   6 losses   storage rw    [M][LOSS_WORDS]      (grad_norm)
//   7 status   storage rw    [M] u32              (all but grad_norm_partial)
//   8 counter  storage rw    [1] u32              (grad_norm, finish_step)
//   9 schedule uniform       LrSchedule           (grad_norm)
//  10 scratch  storage rw    [M][chunks] partial Σ g², then [M][4] coefficients at M·chunks
//                                                 (grad_norm_partial, grad_norm, adam)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   remove_parallel: one invocation per (m, j): ceil(M·S / WG) workgroups;
//   grad_norm_partial: one workgroup per (chunk, model), chunks = ceil(P / NORM_CHUNK): M·chunks;
//   grad_norm:       one workgroup per model (WG a power of two): M workgroups;
//   adam:            one invocation per 4 parameters of a model: ceil(M·ceil(P/4) / WG) workgroups;
//   adam4:           the same update on vec4s when P is a multiple of 4 (bindings 2–5 read as
//                    vectors): ceil(M·P/4 / WG) workgroups;
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
@group(0) @binding(9) var<uniform> schedule: LrSchedule;
// The same buffers as vectors, for adam4 (P a multiple of 4).
@group(0) @binding(2) var<storage, read_write> params4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grads4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> adam_m4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> adam_v4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> scratch: array<f32>;

override WG: u32 = 64u;

/** Parameters per workgroup of grad_norm_partial (a multiple of WG). */
const NORM_CHUNK: u32 = 4096u;
/** Coefficients per model in the scratch after the partial sums. */
const COEF_WORDS: u32 = 4u;


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

/** Chunks of NORM_CHUNK parameters per model. */
fn norm_chunks() -> u32 {
  return (dims.param_size + NORM_CHUNK - 1u) / NORM_CHUNK;
}


/** The learning rate's factor at 0-based step `step` (shaders/lib/lr_schedule.wgsl). */
fn lr_factor(step: u32) -> f32 {
  return schedule_lr_factor(
    step,
    schedule.total_steps,
    schedule.warmup_steps,
    schedule.decay_steps,
    schedule.lr_end_factor,
  );
}

@compute @workgroup_size(WG)
fn grad_norm_partial(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let chunks = norm_chunks();
  let g = wid.x + wid.y * nwg.x;
  if (g >= dims.models * chunks) {
    return;
  }
  let m = g / chunks;
  let start = (g - m * chunks) * NORM_CHUNK;
  let end = min(start + NORM_CHUNK, dims.param_size);
  let base = m * dims.param_size;
  var sq = 0.0;
  for (var k = start + lid; k < end; k += WG) {
    let v = grads[base + k];
    sq += v * v;
  }
  partial[lid] = sq;
  reduce_partial(lid);
  if (lid == 0u) {
    scratch[g] = partial[0];
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
  let chunks = norm_chunks();
  var sq = 0.0;
  for (var c = lid; c < chunks; c += WG) {
    sq += scratch[m * chunks + c];
  }
  partial[lid] = sq;
  reduce_partial(lid);
  if (lid != 0u) {
    return;
  }
  let norm = sqrt(partial[0]);
  let record = m * LOSS_WORDS;
  losses[record + LOSS_GRAD_NORM] = norm;
  let bad = not_finite(norm) || not_finite(losses[record + LOSS_TOTAL]);
  if (bad && status[m] == 0u) {
    status[m] = counter[0] + 1u;
  }
  let info = models[m];
  var clip = 1.0;
  if (info.clip_norm > 0.0) {
    clip = min(1.0, info.clip_norm / (norm + 1e-6));
  }
  let t = counter[0] + 1u;
  let coef = dims.models * chunks + m * COEF_WORDS;
  scratch[coef] = clip;
  scratch[coef + 1u] = info.lr * lr_factor(t - 1u) / (1.0 - pow_int(info.beta1, t));
  scratch[coef + 2u] = sqrt(1.0 - pow_int(info.beta2, t));
}

/** One model's Adam coefficients for this step (written by grad_norm). */
struct AdamCoefs {
  beta1: f32,
  beta2: f32,
  eps: f32,
  clip: f32,
  step_size: f32,
  bias2_sqrt: f32,
}

fn adam_coefs(m: u32) -> AdamCoefs {
  // Only the fields used: copying the whole ModelInfo (its term table) per invocation is slow.
  let at = dims.models * norm_chunks() + m * COEF_WORDS;
  return AdamCoefs(
    models[m].beta1,
    models[m].beta2,
    models[m].eps,
    scratch[at],
    scratch[at + 1u],
    scratch[at + 2u],
  );
}

/** The Adam update of four parameters: new (g clipped, m, v, p). */
fn adam_quad(c: AdamCoefs, g0: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, p0: vec4<f32>) -> mat4x4<f32> {
  let g = g0 * min(c.clip, 1.0);
  let mom = m0 + (1.0 - c.beta1) * (g - m0);
  let vel = c.beta2 * v0 + (1.0 - c.beta2) * g * g;
  let p = p0 - c.step_size * mom / (sqrt(vel) / c.bias2_sqrt + c.eps);
  return mat4x4<f32>(g, mom, vel, p);
}

@compute @workgroup_size(WG)
fn adam(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // Invocation q of model m updates parameters q, q + quarter, q + 2·quarter, q + 3·quarter, so
  // neighbouring invocations touch neighbouring words.
  let quarter = (dims.param_size + 3u) / 4u;
  let i = linear_id(wid, nwg, lid);
  if (i >= dims.models * quarter) {
    return;
  }
  let m = i / quarter;
  if (status[m] != 0u) {
    return;
  }
  let c = adam_coefs(m);
  let q = i - m * quarter;
  for (var part = 0u; part < 4u; part++) {
    let k = q + part * quarter;
    if (k >= dims.param_size) {
      break;
    }
    let at = m * dims.param_size + k;
    let z = vec3<f32>(0.0);
    let u = adam_quad(
      c,
      vec4<f32>(grads[at], z),
      vec4<f32>(adam_m[at], z),
      vec4<f32>(adam_v[at], z),
      vec4<f32>(params[at], z),
    );
    if (c.clip < 1.0) {
      grads[at] = u[0].x;
    }
    adam_m[at] = u[1].x;
    adam_v[at] = u[2].x;
    params[at] = u[3].x;
  }
}

@compute @workgroup_size(WG)
fn adam4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // P is a multiple of 4: invocation i updates parameters 4i..4i+3, all of one model.
  let i = linear_id(wid, nwg, lid);
  let quads = dims.param_size / 4u;
  if (i >= dims.models * quads) {
    return;
  }
  let m = i / quads;
  if (status[m] != 0u) {
    return;
  }
  let c = adam_coefs(m);
  let u = adam_quad(c, grads4[i], adam_m4[i], adam_v4[i], params4[i]);
  if (c.clip < 1.0) {
    grads4[i] = u[0];
  }
  adam_m4[i] = u[1];
  adam_v4[i] = u[2];
  params4[i] = u[3];
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
