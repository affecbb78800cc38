// Per-term partial reconstruction with the delta loss's stop-gradient, as stacked rows: term t of
// model m owns rows [t·B, (t+1)·B) of a [M][T·B] stack (T stacked terms; terms at or beyond the
// model's num_terms are empty). Included after the generated model table and StepDims (src/sae/model_table.ts, src/kernels/step_dims.ts) and shaders/lib/step_dims.wgsl.
//
//   mask_acts:  stack[m][t][b][j] = acts[m][b][j] · [lo_t ≤ j < end_t], lo_t = 0 for the forward
//               mask (everything the term decodes), lo_t = detach_below_t with BACKWARD (what the
//               term sends gradient to); 0 for empty terms. Then r = stack · W_dec (+ b_dec), and
//               the W_dec gradient is stack_backwardᵀ · g_r, both by shaders/matmul.wgsl.
//   mask_sum:   g_acts[m][b][j] += Σ_{t < num_terms} [detach_below_t ≤ j < end_t] · g_stack[m][t][b][j]
//               where g_stack = g_r · W_decᵀ (the activation gradient of every term's decode).
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims     uniform StepDims
//   1 models   storage read  [M] ModelInfo              (both)
//   2 acts     storage read  [M][B][S]                  (mask_acts)
//   3 stack    storage rw    [M][T][B][S]               (mask_acts)
//   4 g_stack  storage read  [M][T][B][S]               (mask_sum)
//   5 g_acts   storage rw    [M][B][S]                  (mask_sum)
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   mask_acts: one invocation per element of stack: ceil(M·T·B·S / WG) workgroups;
//   mask_sum:  one invocation per element of g_acts: ceil(M·B·S / WG) workgroups.

@group(0) @binding(0) var<uniform> dims: StepDims;
@group(0) @binding(1) var<storage, read> models: array<ModelInfo>;
@group(0) @binding(2) var<storage, read> acts: array<f32>;
@group(0) @binding(3) var<storage, read_write> stack: array<f32>;
@group(0) @binding(4) var<storage, read> g_stack: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_acts: array<f32>;

override WG: u32 = 64u;
override BACKWARD: bool = false;

/** Whether latent j of term t of model m is in the mask (forward or backward). */
fn live(m: u32, t: u32, j: u32, backward: bool) -> bool {
  if (t >= models[m].num_terms) {
    return false;
  }
  let term = models[m].terms[t];
  let lo = select(0u, term.detach_below, backward);
  return j >= lo && j < term.end;
}

@compute @workgroup_size(WG)
fn mask_acts(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  let per_model = dims.terms * dims.batch * dims.d_sae;
  if (i >= dims.models * per_model) {
    return;
  }
  let m = i / per_model;
  let k = i - m * per_model; // (t, b, j) within the model
  let t = k / (dims.batch * dims.d_sae);
  let bj = k - t * dims.batch * dims.d_sae; // (b, j)
  let j = bj % dims.d_sae;
  var value = 0.0;
  if (live(m, t, j, BACKWARD)) {
    value = acts[m * dims.batch * dims.d_sae + bj];
  }
  stack[i] = value;
}

@compute @workgroup_size(WG)
fn mask_sum(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid);
  let per_model = dims.batch * dims.d_sae;
  if (i >= dims.models * per_model) {
    return;
  }
  let m = i / per_model;
  let bj = i - m * per_model;
  let j = bj % dims.d_sae;
  var sum = 0.0;
  for (var t = 0u; t < dims.terms; t++) {
    if (live(m, t, j, true)) {
      sum += g_stack[(m * dims.terms + t) * per_model + bj];
    }
  }
  g_acts[i] += sum;
}
