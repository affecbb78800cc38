/**
 * `deno task adapter`: prints the WebGPU adapter this machine gives us and its relevant limits,
 * or the clear no-adapter message (exit 1).
 */
import { describeAdapter, getGpu } from "../src/gpu/device.ts";
import { runMain } from "../src/cli/run_main.ts";

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
