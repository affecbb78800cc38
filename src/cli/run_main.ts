/**
 * Wraps a command-line entry point so that expected failures print one clear message instead of a
 * stack trace: no GPU ({@link GpuUnavailableError}, exit 1) and bad input ({@link UsageError}, exit 2).
 */
import { GpuUnavailableError } from "../gpu/device.ts";

/** A bad command line or bad input: printed without a stack trace by {@link runMain}. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Runs `main`, turning the expected failures into a message on stderr and a non-zero exit. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof GpuUnavailableError) {
      console.error(error.message);
      Deno.exit(1);
    }
    if (error instanceof UsageError) {
      console.error(error.message);
      Deno.exit(2);
    }
    throw error;
  }
}
