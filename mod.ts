/**
 * matryoshka-gpu: train toy Matryoshka sparse autoencoders with raw WebGPU and hand-written WGSL,
 * many at once, to study hedging and absorption and the per-prefix loss multiplier β that balances
 * them.
 *
 * @module
 */
export { type AdapterSummary, describeAdapter, getGpu, type Gpu, GpuUnavailableError } from "./src/gpu/device.ts";
