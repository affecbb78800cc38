/**
 * The backend choice of Deno entry points (`mod.ts`, `src/cli/run_main.ts` and the tests import
 * this module, which registers it with `src/gpu/device.ts`; the browser build leaves it out): on a
 * Linux machine with no GPU device node (`/dev/dri/renderD*`, `/dev/nvidia*`, `/dev/dxg`,
 * `/dev/kfd`) but with Mesa's EGL, llvmpipe through GL, which trains this project's kernels about
 * 1.5× faster than lavapipe through Vulkan, Deno's first choice once `mesa-vulkan-drivers` is
 * installed (README, "Which WebGPU adapter"). Deno refuses to read `/dev` without `--allow-all`,
 * so the folders are listed by `ls` (`--allow-run=ls`); without that leave, or elsewhere than
 * Linux, Deno's first adapter stays.
 */
import { registerBackendChoice } from "./device.ts";

/** What the header says when the machine has no GPU and GL was chosen for it. */
export const NO_GPU_REASON =
  "no GPU device in /dev; llvmpipe through GL trains faster than lavapipe";

/** The folders listed to tell whether the machine has a GPU and Mesa's EGL. */
export const PROBED_FOLDERS: readonly string[] = [
  "/dev",
  "/dev/dri",
  "/usr/share/glvnd/egl_vendor.d",
  "/etc/glvnd/egl_vendor.d",
];

/**
 * What the machine offers for the choice of backend, from `ls` output of {@link PROBED_FOLDERS}
 * (missing folders are absent from it): its GPU device nodes and whether Mesa's EGL is installed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDeviceListing } from "./backend_choice.ts";
 * const listing = "/dev:\nnull\nnvidia0\nnvidiactl\n\n/usr/share/glvnd/egl_vendor.d:\n50_mesa.json\n";
 * assert.deepEqual(parseDeviceListing(listing), { gpuNodes: ["/dev/nvidia0"], mesaEgl: true });
 * assert.deepEqual(parseDeviceListing("/dev:\nnull\ntty\n"), { gpuNodes: [], mesaEgl: false });
 * ```
 */
export function parseDeviceListing(listing: string): { gpuNodes: string[]; mesaEgl: boolean } {
  const gpuNodes: string[] = [];
  let mesaEgl = false;
  let folder = "";
  for (const line of listing.split("\n")) {
    if (line.startsWith("/") && line.endsWith(":")) {
      folder = line.slice(0, -1);
    } else if (line === "") {
      continue;
    } else if (folder === "/dev" && /^(nvidia\d+|dxg|kfd)$/.test(line)) {
      gpuNodes.push(`/dev/${line}`);
    } else if (folder === "/dev/dri" && /^renderD\d+$/.test(line)) {
      gpuNodes.push(`/dev/dri/${line}`);
    } else if (folder.endsWith("egl_vendor.d") && /mesa/i.test(line)) {
      mesaEgl = true;
    }
  }
  return { gpuNodes, mesaEgl };
}

/**
 * The machine's GPU device nodes and whether Mesa's EGL is installed, listed by `ls`; null where
 * they cannot be listed (not Linux, no leave to run `ls`).
 */
export async function probeDevices(): Promise<{ gpuNodes: string[]; mesaEgl: boolean } | null> {
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "run", command: "ls" }).state !== "granted") return null;
  try {
    const listed = await new Deno.Command("ls", {
      args: ["-1", ...PROBED_FOLDERS],
      stdout: "piped",
      stderr: "null",
    }).output();
    return parseDeviceListing(new TextDecoder().decode(listed.stdout));
  } catch {
    return null;
  }
}

/** Whether to ask for GL: no GPU device node, Mesa's EGL present (false where it cannot tell). */
async function noGpuButGl(): Promise<boolean> {
  const devices = await probeDevices();
  return devices !== null && devices.gpuNodes.length === 0 && devices.mesaEgl;
}

registerBackendChoice(async () =>
  await noGpuButGl() ? { backend: "gl", reason: NO_GPU_REASON } : undefined
);
