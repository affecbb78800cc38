// ReLU's backward, element-wise over n floats (any shape, e.g. [M][B][dSae]); the forward is the
// encoder product's epilogue (shaders/matmul_blocked.wgsl, shaders/matmul.wgsl).
//
//   relu_backward: dst[i] = src[i] · [acts[i] > 0]     (src: ∂L/∂acts, acts: the forward output;
//                                                      acts > 0 ⇔ pre > 0, torch's convention)
//
// Bindings (group 0):
//   0 dims  uniform ReluDims { n }
//   1 src   storage read  [n]
//   2 acts  storage read  [n]
//   3 dst   storage rw    [n]
//
// Dispatch: one invocation per element, ceil(n / WG) workgroups; linear workgroup id
// wid.x + wid.y * nwg.x, bounds-checked.

struct ReluDims {
  n: u32,
}

@group(0) @binding(0) var<uniform> dims: ReluDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> acts: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn relu_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < dims.n) {
    dst[i] = select(0.0, src[i], acts[i] > 0.0);
  }
}
