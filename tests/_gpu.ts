/**
 * Test helpers: GPU tests run only where a WebGPU adapter exists (gated on
 * `getGpu()`, never on "is this CI"), unless `MATRYOSHKA_REQUIRE_GPU=1`,
 * where a missing adapter fails them; and the `|a − b| ≤ atol + rtol·|b|` comparison of llm.c.
 */
import { getGpu, type Gpu } from "../src/gpu/device.ts";
// The tests' adapter is chosen as the commands' is (GL on Linux machines without a GPU).
import "../src/gpu/backend_choice.ts";

// Through getGpu, so that the process makes one adapter request, with the backend chosen first.
const adapter = await getGpu().then((gpu) => gpu.adapter, () => null);
const required = Deno.env.get("MATRYOSHKA_REQUIRE_GPU") === "1";

/** True when GPU tests run here. */
export const hasGpu = adapter != null || required;

/** Registers a test that needs the GPU; it receives the shared device. */
export function gpuTest(name: string, fn: (gpu: Gpu) => Promise<void> | void): void {
  Deno.test({
    name,
    ignore: !hasGpu,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => fn(await getGpu()),
  });
}

/**
 * Asserts `|actual − expected| ≤ atol + rtol·|expected|` element-wise; the message lists the first
 * mismatches and the largest difference.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, label = "values" }: { atol?: number; rtol?: number; label?: string } =
    {},
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} != expected ${expected.length}`);
  }
  const bad: string[] = [];
  let maxDiff = 0;
  let count = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const diff = Math.abs(a - e);
    if (!(diff <= atol + rtol * Math.abs(e))) {
      count++;
      if (bad.length < 5) bad.push(`[${i}] ${a} vs ${e} (diff ${diff.toExponential(2)})`);
    }
    if (!(diff <= maxDiff)) maxDiff = Number.isNaN(diff) ? NaN : Math.max(maxDiff, diff);
  }
  if (count > 0) {
    throw new Error(
      `${label}: ${count}/${expected.length} outside atol ${atol} + rtol ${rtol}; ` +
        `max diff ${maxDiff}; first: ${bad.join("; ")}`,
    );
  }
}
