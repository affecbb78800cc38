/**
 * `deno task adapter`: prints the WebGPU adapter this machine gives us and its relevant limits,
 * or the clear no-adapter message (exit 1).
 */
import { describeAdapter, getGpu, runMain } from "../mod.ts";

await runMain(async () => {
  const gpu = await getGpu();
  const limits = gpu.device.limits;
  console.log(`adapter: ${describeAdapter(gpu.summary)}`);
  console.log(`vendor: ${gpu.summary.vendor}`);
  for (
    const name of [
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupsPerDimension",
      "maxStorageBuffersPerShaderStage",
    ] as const
  ) console.log(`${name}: ${limits[name]}`);
});
