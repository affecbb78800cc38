// Batched matrix product: for each of M independent problems,
//
//   C[m] = op(A[m]) · op(B[m])        (or C[m] += … with ACCUMULATE)
//   C[m] = max(op(A[m]) · op(B[m]) + bias[m], 0)   with BIAS_RELU (matmul_block only)
//   A[m] − shift_scale[m] · shift[m] in place of A[m]  with A_SHIFT (the encoder's x − b_dec)
//
// where op(A[m]) is rows × inner and op(B[m]) is inner × cols. Transposes are read functions
// selected by override flags, never materialised:
//   A[m] is stored [rows][inner], or [inner][rows] when TRANS_A;
//   B[m] is stored [inner][cols], or [cols][inner] when TRANS_B;
//   C[m] is stored [rows][cols].
// Matrix m of each operand starts at `*_offset + m * *_stride` floats (stride 0 broadcasts one
// matrix to every m); `*_ld` is the stored row pitch of each operand (its stored width for a
// dense matrix, wider for a block of columns of a larger one); `bias[m]` is a row of `cols` floats of B's buffer at `bias_offset + m *
// bias_stride`. Any sizes; shaders/matmul_blocked.wgsl is the faster product when every size is a
// multiple of 4. The three layouts of an SAE step: x·W (NN), g·Wᵀ (TRANS_B), xᵀ·g (TRANS_A).
//
// Bindings (group 0):
//   0 dims  uniform MatmulDims
//   1 a     storage read   A, as above
//   2 b     storage read   B, as above
//   3 c     storage rw     C, as above
//   4 shift        storage read  shift vectors, [stored width of A] at shift_offset + m·shift_stride
//   5 shift_scale  storage read  [M] f32 (A_SHIFT only)
//
// Entry points and dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   matmul_block: barrier-free; one invocation per 4×4 block of C[m] (16 accumulators in
//                 registers), WG invocations per workgroup, blocks in [M][rows/4][cols/4] order:
//                 ceil(M · ceil(rows/4) · ceil(cols/4) / WG) workgroups.
//   matmul_tiled: one TILE×TILE workgroup per TILE×TILE block of one C[m], A and B staged through
//                 workgroup memory, one output per invocation:
//                 M · ceil(rows/TILE) · ceil(cols/TILE) workgroups.

// struct MatmulDims: generated from MATMUL_DIMS in src/kernels/matmul.ts, included before this file.

@group(0) @binding(0) var<uniform> dims: MatmulDims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> shift: array<f32>;
@group(0) @binding(5) var<storage, read> shift_scale: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;
override BIAS_RELU: bool = false;
/** Read A − shift_scale[m] · shift[m] (the shift subtracted from every stored row of A[m]). */
override A_SHIFT: bool = false;
override WG: u32 = 64u;

const TILE: u32 = 16u;

/** op(A[m])[r][k] (shifted with A_SHIFT), with `base` the start of A[m]. */
fn read_a(m: u32, base: u32, r: u32, k: u32) -> f32 {
  if (TRANS_A) {
    return a[base + k * dims.a_ld + r] - shift_of(m, r);
  }
  return a[base + r * dims.a_ld + k] - shift_of(m, k);
}

/** What A_SHIFT subtracts from column `i` of A[m]'s stored rows (0 without it). */
fn shift_of(m: u32, i: u32) -> f32 {
  if (A_SHIFT) {
    return shift_scale[m] * shift[dims.shift_offset + m * dims.shift_stride + i];
  }
  return 0.0;
}

/** op(B[m])[k][n], with `base` the start of B[m]. */
fn read_b(base: u32, k: u32, n: u32) -> f32 {
  if (TRANS_B) {
    return b[base + n * dims.b_ld + k];
  }
  return b[base + k * dims.b_ld + n];
}

fn write_c(index: u32, value: f32) {
  if (ACCUMULATE) {
    c[index] = c[index] + value;
  } else {
    c[index] = value;
  }
}

/** Stores the in-bounds part of row r, columns n0..n0+3, of C[m] (starting at c_base). */
fn store_quad(c_base: u32, r: u32, n0: u32, sum: vec4<f32>, bias: vec4<f32>) {
  if (r >= dims.rows) {
    return;
  }
  var v = sum;
  if (BIAS_RELU) {
    v = max(v + bias, vec4<f32>(0.0));
  }
  let at = c_base + r * dims.c_ld + n0;
  write_c(at, v.x);
  if (n0 + 1u < dims.cols) {
    write_c(at + 1u, v.y);
  }
  if (n0 + 2u < dims.cols) {
    write_c(at + 2u, v.z);
  }
  if (n0 + 3u < dims.cols) {
    write_c(at + 3u, v.w);
  }
}

@compute @workgroup_size(WG)
fn matmul_block(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let col_blocks = (dims.cols + 3u) / 4u;
  let per = ((dims.rows + 3u) / 4u) * col_blocks;
  if (i >= dims.batch * per) {
    return;
  }
  let m = i / per;
  let block = i - m * per;
  let r0 = (block / col_blocks) * 4u;
  let n0 = (block % col_blocks) * 4u;
  // Rows and columns past the edge re-read the last one; their results are not stored.
  let r = min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(dims.rows - 1u));
  let n = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(dims.cols - 1u));
  let a_base = dims.a_offset + m * dims.a_stride;
  let b_base = dims.b_offset + m * dims.b_stride;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < dims.inner; k++) {
    let bk = vec4<f32>(
      read_b(b_base, k, n.x),
      read_b(b_base, k, n.y),
      read_b(b_base, k, n.z),
      read_b(b_base, k, n.w),
    );
    acc0 += read_a(m, a_base, r.x, k) * bk;
    acc1 += read_a(m, a_base, r.y, k) * bk;
    acc2 += read_a(m, a_base, r.z, k) * bk;
    acc3 += read_a(m, a_base, r.w, k) * bk;
  }
  let c_base = dims.c_offset + m * dims.c_stride;
  var bias = vec4<f32>(0.0);
  if (BIAS_RELU) {
    let bias_base = dims.bias_offset + m * dims.bias_stride;
    bias = vec4<f32>(b[bias_base + n.x], b[bias_base + n.y], b[bias_base + n.z], b[bias_base + n.w]);
  }
  store_quad(c_base, r0, n0, acc0, bias);
  store_quad(c_base, r0 + 1u, n0, acc1, bias);
  store_quad(c_base, r0 + 2u, n0, acc2, bias);
  store_quad(c_base, r0 + 3u, n0, acc3, bias);
}

var<workgroup> tile_a: array<array<f32, TILE>, TILE>; // [r][k]
var<workgroup> tile_b: array<array<f32, TILE>, TILE>; // [k][n]

@compute @workgroup_size(TILE, TILE)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let tiles_r = (dims.rows + TILE - 1u) / TILE;
  let tiles_n = (dims.cols + TILE - 1u) / TILE;
  let g = wid.x + wid.y * nwg.x;
  let m = g / (tiles_r * tiles_n);
  if (m >= dims.batch) {
    return;
  }
  let tile = g - m * tiles_r * tiles_n;
  let tr = tile / tiles_n;
  let r = tr * TILE + lid.y;
  let n = (tile - tr * tiles_n) * TILE + lid.x;
  let a_base = dims.a_offset + m * dims.a_stride;
  let b_base = dims.b_offset + m * dims.b_stride;
  var acc = 0.0;
  for (var k0 = 0u; k0 < dims.inner; k0 += TILE) {
    // Thread (y, x) stages A[r][k0 + x] and B[k0 + y][n]; zeros outside the matrices.
    let ka = k0 + lid.x;
    var va = 0.0;
    if (r < dims.rows && ka < dims.inner) {
      va = read_a(m, a_base, r, ka);
    }
    tile_a[lid.y][lid.x] = va;
    let kb = k0 + lid.y;
    var vb = 0.0;
    if (n < dims.cols && kb < dims.inner) {
      vb = read_b(b_base, kb, n);
    }
    tile_b[lid.y][lid.x] = vb;
    workgroupBarrier();
    for (var k = 0u; k < TILE; k++) {
      acc += tile_a[lid.y][k] * tile_b[k][lid.x];
    }
    workgroupBarrier();
  }
  if (r < dims.rows && n < dims.cols) {
    write_c(dims.c_offset + m * dims.c_stride + r * dims.c_ld + n, acc);
  }
}
