// A bias's gradient: the reduction over rows of M independent [rows][cols] matrices (adding a bias
// is the products' epilogue, shaders/matmul_blocked.wgsl and shaders/matmul.wgsl).
//
//   reduce_rows: vec[m][c] = Σ_r src[m][r][c]           (or += with ACCUMULATE)
//
// where vec[m] is the per-model vector at `vec_offset + m * vec_stride` floats of its buffer
// (stride 0: one vector shared by every m).
//
// Bindings (group 0; each entry point uses the ones it names):
//   0 dims    uniform BiasDims
//   1 src     storage read  [M][rows][cols]
//   5 vec_out storage rw    per-model vectors
//
// Dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   reduce_rows: one invocation per (m, c), looping over rows: ceil(M·cols / WG) workgroups.

struct BiasDims {
  batch: u32,
  rows: u32,
  cols: u32,
  vec_offset: u32,
  vec_stride: u32,
}

@group(0) @binding(0) var<uniform> dims: BiasDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(5) var<storage, read_write> vec_out: array<f32>;

override WG: u32 = 64u;
override ACCUMULATE: bool = false;

@compute @workgroup_size(WG)
fn reduce_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= dims.batch * dims.cols) {
    return;
  }
  let m = i / dims.cols;
  let c = i - m * dims.cols;
  var sum = 0.0;
  let base = m * dims.rows * dims.cols + c;
  for (var r = 0u; r < dims.rows; r++) {
    sum += src[base + r * dims.cols];
  }
  let o = dims.vec_offset + m * dims.vec_stride + c;
  if (ACCUMULATE) {
    vec_out[o] = vec_out[o] + sum;
  } else {
    vec_out[o] = sum;
  }
}
