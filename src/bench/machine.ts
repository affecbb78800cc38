/**
 * What the benchmark prints about the machine: CPU model, core count, load, OS and Deno versions.
 * Deno refuses to read /proc without --allow-all, so /proc files are read with `cat` (needs
 * --allow-run) when a direct read is refused.
 */

/**
 * The machine the benchmark ran on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MachineInfo } from "./machine.ts";
 * const machine: MachineInfo = {
 *   cpu: "unknown",
 *   cores: navigator.hardwareConcurrency,
 *   os: `${Deno.build.os} ${Deno.build.arch}`,
 *   ...Deno.version,
 * };
 * assert.ok(machine.cores >= 1);
 * assert.match(machine.deno, /^2\./);
 * ```
 */
export interface MachineInfo {
  /** CPU model name from /proc/cpuinfo (`unknown` elsewhere). */
  cpu: string;
  /** Logical cores the runtime sees. */
  cores: number;
  /** `Deno.build.os` and `Deno.build.arch`, e.g. `linux x86_64`. */
  os: string;
  /** Deno's version (`Deno.version.deno`). */
  deno: string;
  /** V8's version (`Deno.version.v8`). */
  v8: string;
  /** The TypeScript version built into Deno (`Deno.version.typescript`). */
  typescript: string;
}

/** The text of a /proc file, or null when it cannot be read. */
export function readProcFile(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    try {
      const out = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
        .outputSync();
      return out.success ? new TextDecoder().decode(out.stdout) : null;
    } catch {
      return null;
    }
  }
}

/** The CPU model named in /proc/cpuinfo's first `model name` line, or `unknown`. */
export function cpuModel(): string {
  const text = readProcFile("/proc/cpuinfo") ?? "";
  return text.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
}

/** The 1-minute load average from /proc/loadavg, or null where there is none. */
export function loadAverage(): number | null {
  const text = readProcFile("/proc/loadavg");
  const value = text ? Number(text.split(" ")[0]) : NaN;
  return Number.isFinite(value) ? value : null;
}

/** The machine and runtime versions. */
export function machineInfo(): MachineInfo {
  return {
    cpu: cpuModel(),
    cores: navigator.hardwareConcurrency,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
  };
}
