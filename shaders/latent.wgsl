// The latent-input formulation of the encoder (x = f·E, so x·W_enc = f·(E·W_enc)): the two
// per-model vectors it needs besides its products (src/sae/kernel_step.ts). Included after the
// generated model table and StepDims and shaders/lib/step_dims.wgsl. F = features per row.
//
//   latent_bias: the encoder's bias in latent form, after E·W_enc in the scratch `ew`:
//                ew[m][F·S + j] = b_enc[m][j] − [apply_b_dec_to_input] · Σ_d b_dec[m][d]·W_enc[m][d][j]
//                ((f·E − b_dec)·W_enc + b_enc = f·(E·W_enc) + that)
//   latent_wenc_fix: the W_enc gradient's input shift, after grads W_enc = Eᵀ·(Fᵀ·g_pre) and
//                grads b_enc = Σ_b g_pre: grads W_enc[m][d][j] −= [apply] · b_dec[m][d] · grads b_enc[m][j]
// Loop trip counts: D per latent_bias invocation, S per latent_wenc_fix invocation.
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims    uniform StepDims
//   1 models  storage read  [M] ModelInfo              (both)
//   2 params  storage read  [M][P]                     (both)
//   3 ew      storage rw    [M][F·S + S]               (latent_bias)
//   4 grads   storage rw    [M][P]                     (latent_wenc_fix)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   latent_bias:     one invocation per (m, j): ceil(M·S / WG) workgroups;
//   latent_wenc_fix: one invocation per (m, d): ceil(M·D / WG) workgroups.

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> ew: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

override WG: u32 = 64u;
/** Features per row F (the rows of E·W_enc before the bias row in `ew`). */
override N_FEATURES: u32 = 1u;

@compute @workgroup_size(WG)
fn latent_bias(
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
  let block = m * dims.param_size;
  var shift = 0.0;
  if (models[m].apply_b_dec_to_input != 0u) {
    for (var d = 0u; d < dims.d_in; d++) {
      shift += params[block + dims.b_dec + d] * params[block + dims.w_enc + d * dims.d_sae + j];
    }
  }
  let per_model = (N_FEATURES + 1u) * dims.d_sae;
  ew[m * per_model + N_FEATURES * dims.d_sae + j] = params[block + dims.b_enc + j] - shift;
}

@compute @workgroup_size(WG)
fn latent_wenc_fix(
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
  if (models[m].apply_b_dec_to_input == 0u) {
    return;
  }
  let block = m * dims.param_size;
  let b = params[block + dims.b_dec + d];
  for (var j = 0u; j < dims.d_sae; j++) {
    grads[block + dims.w_enc + d * dims.d_sae + j] -= b * grads[block + dims.b_enc + j];
  }
}
