// A workgroup's sum in shared memory: each invocation writes its value to partial[lid], then all
// call reduce_partial(lid), after which partial[0] holds the sum (a tree of log2(WG) barriered
// steps; WG, the includer's `override WG`, a power of two). Included by shaders/recon_loss.wgsl
// (loss_total) and shaders/optimizer.wgsl (the gradient norm).

var<workgroup> partial: array<f32, WG>;

/** Sums `partial[0..WG)` into `partial[0]` (every invocation of the workgroup calls it). */
fn reduce_partial(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
}
