// sample.wgsl — batches of the toy world: tree-sampled features and their embedding.
// Include after lib/prng.wgsl, the generated tree layout (TREE_FLAT_FILE), lib/tree_sample.wgsl
// and the generated GROUP_* offsets (WORLD_FILE, src/sae/world.ts). G groups (each one tree, one
// seed and one embedding), B rows per batch, F feature columns (the widest tree; narrower trees'
// extra columns are 0), D = d_in embedding dimensions.
//
// Bindings (group 0; each entry point uses only those listed with it):
//   0 params         uniform  {groups G, batch B, n_features F, d_in D}      sample, embed
//   1 features       storage  f32 [G][B][F]           written by sample, read by embed
//   3 x              storage  f32 [G][B][D]           written by embed
//   4 tree_nodes     storage  u32 [...]               sample, embed: the world packed by
//                    packWorld() of src/sae/world.ts: G group headers (GROUP_TREE_BASE, GROUP_SEED,
//                    GROUP_N_FEATURES, GROUP_EMBEDDING_BASE), the trees (lib/tree_sample.wgsl
//                    layout), each group's embedding E [nf][D] (f32 bits)
//   6 step_counter   storage  u32 [1]                 sample reads the step, advance adds 1
//
// Entry points, all 1-D over a folded (x, y) grid of 64-thread workgroups (linear workgroup id
// wid.x + wid.y·nwg.x), bounds-checked:
//   sample:  one thread per (g, b, f), G·B·F threads: features[g][b][f] = tree_feature_value(
//            tree_base_g, f, seed_g, step_counter[0], b) for f < nf_g, else 0
//   embed:   one thread per (g, b, d), G·B·D threads:
//            x[g][b][d] = Σ_{f < nf_g} features[g][b][f]·E_g[f][d] (f ascending, one multiply-add
//            per term; the columns f ≥ nf_g are 0 and would add nothing)
//   advance: one thread: step_counter[0] += 1 (dispatch 1 workgroup after sample)

struct SampleParams {
  groups: u32,
  batch: u32,
  n_features: u32,
  d_in: u32,
}

@group(0) @binding(0) var<uniform> params: SampleParams;
@group(0) @binding(1) var<storage, read_write> features: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read> tree_nodes: array<u32>;
@group(0) @binding(6) var<storage, read_write> step_counter: array<u32>;

override WORKGROUP_SIZE: u32 = 64u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid.x;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sample(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = linear_id(wid, nwg, lid);
  let width = params.n_features;
  let per_group = params.batch * width;
  if (i >= params.groups * per_group) {
    return;
  }
  let g = i / per_group;
  let b = (i % per_group) / width;
  let f = i % width;
  let header = g * GROUP_WORDS;
  var value = 0.0;
  if (f < tree_nodes[header + GROUP_N_FEATURES]) {
    let tree_base = tree_nodes[header + GROUP_TREE_BASE];
    value = tree_feature_value(tree_base, f, tree_nodes[header + GROUP_SEED], step_counter[0], b);
  }
  features[i] = value;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn embed(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = linear_id(wid, nwg, lid);
  let d_in = params.d_in;
  let per_group = params.batch * d_in;
  if (i >= params.groups * per_group) {
    return;
  }
  let g = i / per_group;
  let b = (i % per_group) / d_in;
  let d = i % d_in;
  let width = params.n_features;
  let row = (g * params.batch + b) * width;
  let nf = tree_nodes[g * GROUP_WORDS + GROUP_N_FEATURES];
  let table = tree_nodes[g * GROUP_WORDS + GROUP_EMBEDDING_BASE] + d;
  var acc = 0.0;
  for (var f = 0u; f < nf; f++) {
    acc += features[row + f] * bitcast<f32>(tree_nodes[table + f * d_in]);
  }
  x[i] = acc;
}

@compute @workgroup_size(1)
fn advance() {
  step_counter[0] += 1u;
}
