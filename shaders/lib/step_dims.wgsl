// Included by the model-aware kernels of the kernel set (sparsity, prefix_recon, recon_loss,
// optimizer) after their StepDims uniform's struct, which is generated from the STEP_DIMS table
// in src/kernels/step_dims.ts (STEP_DIMS_STRUCT_FILE). Here: the linear invocation index of a
// dispatch folded into (x, y) workgroups; includers declare `override WG` (their workgroup size).

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}
