// Register-blocked batched matrix product on 4-float vectors: for each of M independent problems,
//
//   C[m] = op(A[m]) · op(B[m])           (or C[m] += … with ACCUMULATE)
//   C[m] = max(op(A[m]) · op(B[m]) + bias[m], 0)   with BIAS_RELU (the encoder's epilogue)
//   A[m] − shift_scale[m] · shift[m] in place of A[m]  with A_SHIFT (the encoder's x − b_dec)
//   C[m] = resid_scale[m] · (op(A[m])·op(B[m]) + bias[m] − R[m]), Σ e² per row  with RESIDUAL
//   (a decoded term's MSE gradient 2·mult/B · e and its loss, in the product's epilogue)
//   C[m] (+)= op(A[m])·op(B[m]) · [R[m] > 0]  with GATE (∂loss/∂acts through the ReLU)
//
// with the storage conventions of shaders/matmul.wgsl (A[m] [rows][inner] or [inner][rows] with
// TRANS_A; B[m] [inner][cols] or [cols][inner] with TRANS_B; C[m] [rows][cols]; matrix m of an
// operand at `*_offset + m * *_stride` floats, stored row pitch `*_ld`), but every size, offset,
// stride and pitch a multiple of 4,
// so each load and store moves one vec4. `bias[m]` is a row of `cols` floats of B's buffer at
// `bias_offset + m * bias_stride`.
//
// Each invocation owns a (4·RB) × (4·CB) block of C[m] as RB·CB 4×4 matrices in registers. One
// loop iteration loads a 4×4 block of op(A) and of op(B) per register block (four vec4 loads each,
// transposed to column order where the storage is row-major) and adds their product: 64·RB·CB
// multiply-adds per iteration, `inner / 4` iterations. On Mesa's CPU adapters the cost is loop
// iterations and loads, so this does 4× the work per iteration of matmul_block (numbers in
// src/kernels/matmul.ts).
//
// Bindings (group 0):
//   0 dims  uniform MatmulDims
//   1 a     storage read   A (vec4)
//   2 b     storage read   B and the bias (vec4)
//   3 c     storage rw     C (vec4)
//   4 shift        storage read  shift vectors (vec4), [stored width of A] at shift_offset + m·shift_stride
//   5 shift_scale  storage read  [M] f32 (A_SHIFT only)
//   6 resid        storage read  R (vec4): the MSE epilogue's target or the gate (RESIDUAL, GATE)
//   7 resid_scale  storage read  [M] f32 gradient coefficient (RESIDUAL only)
//   8 row_sq       storage rw    Σ e² per row and block column (RESIDUAL only)
//
// Entry point and dispatch (linear workgroup id = wid.x + wid.y * nwg.x, bounds-checked):
//   matmul_blocked: one invocation per block, blocks in [M][row blocks][col blocks] order,
//                   ceil(M · ceil(rows / (4·RB)) · ceil(cols / (4·CB)) / WG) workgroups. Blocks
//                   past the edge of C re-read its last 4 rows or columns and store nothing there.

// struct MatmulDims: generated from MATMUL_DIMS in src/kernels/matmul.ts, included before this file.

@group(0) @binding(0) var<uniform> dims: MatmulDims;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> shift: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> shift_scale: array<f32>;
@group(0) @binding(6) var<storage, read> resid: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> resid_scale: array<f32>;
@group(0) @binding(8) var<storage, read_write> row_sq: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;
override BIAS_RELU: bool = false;
/**
 * The MSE epilogue: e = op(A)·op(B) + bias[m] − R[m] (R = resid, [rows][cols] at resid_offset +
 * m·resid_stride, pitch resid_ld); C = resid_scale[m] · e; and Σ e² over each invocation's columns
 * of each row into row_sq[sq_offset + m·sq_stride + r·col_blocks + block column].
 */
override RESIDUAL: bool = false;
/**
 * Gate the product by the sign of R (binding 6, laid out like C): C (+)= op(A)·op(B) · [R > 0]
 * (the ReLU's backward mask applied where ∂loss/∂acts is formed).
 */
override GATE: bool = false;
/** Read A − shift_scale[m] · shift[m] (the shift subtracted from every stored row of A[m]). */
override A_SHIFT: bool = false;
/** Register blocks per invocation along rows and columns, 1 or 2 (the arrays below hold 2). */
override RB: u32 = 2u;
override CB: u32 = 2u;
override WG: u32 = 64u;
/**
 * Debug: every loop body counts itself; each invocation then stores its count (as f32, in all four
 * lanes) over the first vector of its block of C instead of the product (tests check the count
 * against kernelLoopIterations, the bound the trainer refuses shapes by).
 */
override COUNT_LOOPS: bool = false;
var<private> loops: u32 = 0u;

fn count_loop() {
  if (COUNT_LOOPS) {
    loops += 1u;
  }
}

/** Rows r0..r0+3, inner k0..k0+3 of op(A[m]) as a matrix whose column j is inner index k0 + j. */
fn load_a(m: u32, base: u32, r0: u32, k0: u32) -> mat4x4<f32> {
  let s = dims.a_ld / 4u;
  if (TRANS_A) {
    let i = base + k0 * s + r0 / 4u;
    let sh = shift_of(m, r0);
    return mat4x4<f32>(a[i] - sh, a[i + s] - sh, a[i + 2u * s] - sh, a[i + 3u * s] - sh);
  }
  let i = base + r0 * s + k0 / 4u;
  let sh = shift_of(m, k0);
  return transpose(
    mat4x4<f32>(a[i] - sh, a[i + s] - sh, a[i + 2u * s] - sh, a[i + 3u * s] - sh),
  );
}

/** What A_SHIFT subtracts from columns i..i+3 of A[m]'s stored rows (0 without it). */
fn shift_of(m: u32, i: u32) -> vec4<f32> {
  if (A_SHIFT) {
    return shift_scale[m] * shift[(dims.shift_offset + m * dims.shift_stride + i) / 4u];
  }
  return vec4<f32>(0.0);
}

/** Inner k0..k0+3, columns n0..n0+3 of op(B[m]) as a matrix whose column j is column n0 + j. */
fn load_b(base: u32, k0: u32, n0: u32) -> mat4x4<f32> {
  let s = dims.b_ld / 4u;
  if (TRANS_B) {
    let i = base + n0 * s + k0 / 4u;
    return mat4x4<f32>(b[i], b[i + s], b[i + 2u * s], b[i + 3u * s]);
  }
  let i = base + k0 * s + n0 / 4u;
  return transpose(mat4x4<f32>(b[i], b[i + s], b[i + 2u * s], b[i + 3u * s]));
}

/**
 * Stores a 4×4 block (rows as vectors) at rows r..r+3, columns n..n+3 of C[m]; returns each row's
 * Σ e² (RESIDUAL) or 0.
 */
fn store_block(m: u32, c_base: u32, r: u32, n: u32, rows: mat4x4<f32>, bias: vec4<f32>) -> vec4<f32> {
  let s = dims.c_ld / 4u;
  let i = c_base + r * s + n / 4u;
  var sq = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    count_loop();
    var v = rows[j];
    if (BIAS_RELU) {
      v = max(v + bias, vec4<f32>(0.0));
    }
    if (RESIDUAL || GATE) {
      let at = (dims.resid_offset + m * dims.resid_stride + (r + j) * dims.resid_ld + n) / 4u;
      if (RESIDUAL) {
        let e = v + bias - resid[at];
        sq[j] = dot(e, e);
        v = resid_scale[m] * e;
      } else {
        v = select(vec4<f32>(0.0), v, resid[at] > vec4<f32>(0.0));
      }
    }
    if (ACCUMULATE) {
      v += c[i + j * s];
    }
    c[i + j * s] = v;
  }
  return sq;
}

@compute @workgroup_size(WG)
fn matmul_blocked(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let row_blocks = (dims.rows + 4u * RB - 1u) / (4u * RB);
  let col_blocks = (dims.cols + 4u * CB - 1u) / (4u * CB);
  let per = row_blocks * col_blocks;
  if (i >= dims.batch * per) {
    return;
  }
  let m = i / per;
  let block = i - m * per;
  let r0 = (block / col_blocks) * 4u * RB;
  let n0 = (block % col_blocks) * 4u * CB;
  let a_base = (dims.a_offset + m * dims.a_stride) / 4u;
  let b_base = (dims.b_offset + m * dims.b_stride) / 4u;
  // Sub-blocks past the edge read the last 4 rows / columns (results dropped at the store).
  var r: array<u32, 2>;
  var n: array<u32, 2>;
  for (var x = 0u; x < RB; x++) {
    count_loop();
    r[x] = min(r0 + 4u * x, dims.rows - 4u);
  }
  for (var y = 0u; y < CB; y++) {
    count_loop();
    n[y] = min(n0 + 4u * y, dims.cols - 4u);
  }
  var acc: array<mat4x4<f32>, 4>; // [x * CB + y]
  for (var k = 0u; k < dims.inner; k += 4u) {
    count_loop();
    var am: array<mat4x4<f32>, 2>;
    for (var x = 0u; x < RB; x++) {
      count_loop();
      am[x] = load_a(m, a_base, r[x], k);
    }
    for (var y = 0u; y < CB; y++) {
      count_loop();
      let bm = load_b(b_base, k, n[y]);
      for (var x = 0u; x < RB; x++) {
        count_loop();
        acc[x * CB + y] += am[x] * bm;
      }
    }
  }
  let c_base = (dims.c_offset + m * dims.c_stride) / 4u;
  let bias_base = (dims.bias_offset + m * dims.bias_stride) / 4u;
  for (var x = 0u; x < RB; x++) {
    count_loop();
    if (r0 + 4u * x >= dims.rows) {
      continue;
    }
    var sq = vec4<f32>(0.0);
    for (var y = 0u; y < CB; y++) {
      count_loop();
      if (n0 + 4u * y >= dims.cols) {
        continue;
      }
      var bias = vec4<f32>(0.0);
      if (BIAS_RELU || RESIDUAL) {
        bias = b[bias_base + n[y] / 4u];
      }
      sq += store_block(m, c_base, r[x], n[y], transpose(acc[x * CB + y]), bias);
    }
    if (RESIDUAL) {
      let at = dims.sq_offset + m * dims.sq_stride + r[x] * col_blocks + block % col_blocks;
      for (var j = 0u; j < 4u; j++) {
        count_loop();
        row_sq[at + j * col_blocks] = sq[j];
      }
    }
  }
  if (COUNT_LOOPS) {
    c[c_base + r0 * (dims.c_ld / 4u) + n0 / 4u] = vec4<f32>(f32(loops));
  }
}
