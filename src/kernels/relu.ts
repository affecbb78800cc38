/** Wrapper of `shaders/relu.wgsl`: ReLU's backward, element-wise (the forward is a product epilogue). */
import type { Gpu } from "../gpu/device.ts";
import { uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline } from "../gpu/pipelines.ts";
import reluWgsl from "../../shaders/relu.wgsl" with { type: "text" };
import { type KernelOp, kernelOp, requirePositive, requireWords, WORKGROUP } from "./kernel_op.ts";

const FILE = { path: "shaders/relu.wgsl", code: reluWgsl };

async function create(
  gpu: Gpu,
  entryPoint: "relu_backward",
  count: number,
  buffers: Record<number, GPUBuffer>,
  label: string,
): Promise<KernelOp> {
  requirePositive("count", count);
  const names: Record<number, string> = { 1: "src", 2: "acts", 3: "dst" };
  for (const [binding, buffer] of Object.entries(buffers)) {
    requireWords(names[Number(binding)]!, buffer, count);
  }
  const pipeline = await getPipeline(gpu, {
    label: entryPoint,
    files: [FILE],
    entryPoint,
    constants: { WG: WORKGROUP },
  });
  const dims = uploadUniform(gpu, `${label} dims`, new Uint32Array([count]));
  const group = bindGroup(gpu, pipeline, { 0: dims, ...buffers }, label);
  return kernelOp(gpu, label, pipeline, group, Math.ceil(count / WORKGROUP), [dims]);
}

/** `gradPre[i] = gradActs[i] · [acts[i] > 0]` for `count` floats. */
export function createReluBackward(
  gpu: Gpu,
  spec: {
    count: number;
    gradActs: GPUBuffer;
    acts: GPUBuffer;
    gradPre: GPUBuffer;
    label?: string;
  },
): Promise<KernelOp> {
  return create(
    gpu,
    "relu_backward",
    spec.count,
    { 1: spec.gradActs, 2: spec.acts, 3: spec.gradPre },
    spec.label ?? "relu_backward",
  );
}
