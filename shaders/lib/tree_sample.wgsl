// tree_sample.wgsl — the tree feature generator on the GPU: whether a node of a tree is active,
// and the value of a read-out feature, in one row of the batch of one step. A library: plain
// functions, no bindings of its own; include it after prng.wgsl. Host twin: src/toy/cpu_sampler.ts.
//
// REQUIRES the including shader to include, before this file, the generated layout constants
// (TREE_FLAT_FILE of src/toy/tree_flat.ts: TREE_HEADER_*, TREE_NODE_* word offsets, TREE_NONE,
// TREE_FLAG_*), and to declare, at module scope, with any group/binding:
//   var<storage, read> tree_nodes: array<u32>;
// holding all trees concatenated, each flattened by flattenTree() of src/toy/tree_flat.ts. A tree
// is addressed by its base word offset `tree_base`. Layout from base: the TreeHeader record
// (n_nodes, n_features F), then feature_node[f] (pre-order node index) for f < F, then one
// TreeNode record (TREE_NODE_WORDS words) per node n (pre-order, root = 0): parent (TREE_NONE for
// the root), flags (TREE_FLAG_READ_OUT, TREE_FLAG_ME_CHILD: chosen by a mutually exclusive parent,
// TREE_FLAG_ME_PARENT: has mutually exclusive children), active_prob, active_prob_without_parent,
// magnitude_mean, magnitude_std (f32 bits), [lo, hi) (f32: chosen by its mutually exclusive parent
// iff lo <= u < hi), feature index (TREE_NONE if not read out). Field docs: src/toy/tree_flat.ts.
//
// Randomness: every decision about node n in row `row` of step `step` comes from one Philox block
//   tree_random(seed, step, row, n) = philox4x32_10((step, row, n, 0), (seed, 0x54524545 "TREE"))
// draw 0 (.x): n's own Bernoulli, passes iff prng_unit(.x) < active_prob (with its parent active)
//              or < active_prob_without_parent (with its parent inactive);
// draw 1 (.y): the choice among n's children when they are mutually exclusive, u = prng_unit(.y)
//              (drawn whether or not n is active);
// draws 2, 3 (.z, .w): Box–Muller normal for n's magnitude when magnitude_std > 0.
// So a batch is a pure function of (seed, step); trees packed together with the same seed share
// the draws of equal node indices (common random numbers).
//
// Semantics (the published generator): n is active iff every node on the path root..n passes its
// own test: a child of a mutually exclusive parent passes iff it is the chosen one, any other node
// iff its Bernoulli succeeds. Extension: a node with active_prob_without_parent > 0 may also fire
// while its parent is inactive (then with that probability; the published single-latent study's
// correlated features). An active read-out node's value is magnitude_mean, or
// |magnitude_mean + magnitude_std·z| when magnitude_std > 0; otherwise 0.
//
// API:
//   fn tree_n_nodes(tree_base: u32) -> u32
//   fn tree_n_features(tree_base: u32) -> u32
//   fn tree_feature_node(tree_base: u32, feature: u32) -> u32
//   fn tree_random(seed: u32, step: u32, row: u32, node: u32) -> vec4<u32>
//   fn tree_node_active(tree_base: u32, node: u32, seed: u32, step: u32, row: u32) -> bool
//   fn tree_feature_value(tree_base: u32, feature: u32, seed: u32, step: u32, row: u32) -> f32
// Each walks from the node up to the root: cost ≈ depth Philox blocks; any thread can evaluate any
// (feature, row) independently.

const TREE_KEY_DOMAIN: u32 = 0x54524545u;

fn tree_n_nodes(tree_base: u32) -> u32 {
  return tree_nodes[tree_base + TREE_HEADER_N_NODES];
}

fn tree_n_features(tree_base: u32) -> u32 {
  return tree_nodes[tree_base + TREE_HEADER_N_FEATURES];
}

fn tree_feature_node(tree_base: u32, feature: u32) -> u32 {
  return tree_nodes[tree_base + TREE_HEADER_WORDS + feature];
}

// Word offset of node `node`'s record.
fn tree_record(tree_base: u32, node: u32) -> u32 {
  return tree_base + TREE_HEADER_WORDS + tree_n_features(tree_base) + node * TREE_NODE_WORDS;
}

fn tree_random(seed: u32, step: u32, row: u32, node: u32) -> vec4<u32> {
  return philox4x32_10(vec4<u32>(step, row, node, 0u), vec2<u32>(seed, TREE_KEY_DOMAIN));
}

// Whether `node` is active, given its own Philox block `block` (saves recomputing it). Walks from
// the node up to the root, keeping for each level k below the root whether the level's node
// passes its test with its parent active (bit k of `with_parent`) and without it
// (`without_parent`: u < activeProbWithoutParent); then replays the path from the root down. A
// node that passes neither test ends the walk at once (inactive) unless a node below it on the
// path may fire without its parent. Trees with such nodes are at most 31 levels deep.
fn tree_node_active_from(
  tree_base: u32, node: u32, block: vec4<u32>, seed: u32, step: u32, row: u32,
) -> bool {
  var n = node;
  var own_block = block;
  var with_parent = 0u;
  var without_parent = 0u;
  var levels = 0u;
  var orphan_below = false; // some node below on the path may fire without its parent
  let limit = tree_n_nodes(tree_base);
  for (var depth = 0u; depth < limit; depth++) {
    let rec = tree_record(tree_base, n);
    let parent = tree_nodes[rec + TREE_NODE_PARENT];
    let flags = tree_nodes[rec + TREE_NODE_FLAGS];
    let u_own = prng_unit(own_block.x);
    if (parent == TREE_NONE) {
      var is_active = u_own < bitcast<f32>(tree_nodes[rec + TREE_NODE_ACTIVE_PROB]);
      if (!orphan_below) { return is_active; }
      for (var k = levels; k > 0u; k--) {
        let bit = 1u << (k - 1u);
        is_active = select((without_parent & bit) != 0u, (with_parent & bit) != 0u, is_active);
      }
      return is_active;
    }
    let parent_block = tree_random(seed, step, row, parent);
    var passes: bool;
    var passes_alone = false;
    if ((flags & TREE_FLAG_ME_CHILD) != 0u) {
      let u = prng_unit(parent_block.y);
      let lo = bitcast<f32>(tree_nodes[rec + TREE_NODE_LO]);
      passes = u >= lo && u < bitcast<f32>(tree_nodes[rec + TREE_NODE_HI]);
    } else {
      passes = u_own < bitcast<f32>(tree_nodes[rec + TREE_NODE_ACTIVE_PROB]);
      passes_alone = u_own < bitcast<f32>(tree_nodes[rec + TREE_NODE_ACTIVE_PROB_WITHOUT_PARENT]);
    }
    if (!passes && !passes_alone && !orphan_below) {
      return false;
    }
    if (levels < 32u) {
      with_parent |= select(0u, 1u << levels, passes);
      without_parent |= select(0u, 1u << levels, passes_alone);
    }
    levels += 1u;
    orphan_below = orphan_below ||
      bitcast<f32>(tree_nodes[rec + TREE_NODE_ACTIVE_PROB_WITHOUT_PARENT]) > 0.0;
    n = parent;
    own_block = parent_block;
  }
  return false; // only reached for a malformed tree (a parent cycle)
}

fn tree_node_active(tree_base: u32, node: u32, seed: u32, step: u32, row: u32) -> bool {
  return tree_node_active_from(tree_base, node, tree_random(seed, step, row, node), seed, step, row);
}

fn tree_feature_value(tree_base: u32, feature: u32, seed: u32, step: u32, row: u32) -> f32 {
  let node = tree_feature_node(tree_base, feature);
  let block = tree_random(seed, step, row, node);
  if (!tree_node_active_from(tree_base, node, block, seed, step, row)) {
    return 0.0;
  }
  let rec = tree_record(tree_base, node);
  let mean = bitcast<f32>(tree_nodes[rec + TREE_NODE_MAGNITUDE_MEAN]);
  let spread = bitcast<f32>(tree_nodes[rec + TREE_NODE_MAGNITUDE_STD]);
  if (spread > 0.0) {
    return abs(mean + spread * prng_normal(block.z, block.w));
  }
  return mean;
}
