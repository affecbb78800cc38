/**
 * Talks to the PyTorch baseline (`bench/torch_sae.py`): starts one Python process, sends it JSON
 * requests one per line and reads one JSON response per line (see the script's header for the
 * protocol), and converts our trees and SAE configurations into the plain data it reads.
 */
import { PUBLISHED_OPTIMIZER } from "../sae/train_settings.ts";
import type { SaeConfig } from "../sae/config.ts";
import { lossPlan } from "../sae/loss_plan.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";

/**
 * What the Python process reports when it starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TorchVersions } from "./torch_runner.ts";
 * import type { BenchResults } from "./results.ts";
 * const versions: TorchVersions = { torch: "2.1.2", python: "3.11.2", threads: 2 };
 * const torch: BenchResults["torch"] = versions; // or { skipped: "why" }
 * assert.ok(!("skipped" in torch));
 * assert.equal(torch.threads, 2);
 * ```
 */
export interface TorchVersions {
  /** torch's version (`torch.__version__`). */
  torch: string;
  /** Python's version (`platform.python_version()`). */
  python: string;
  /** Threads torch computes with (`torch.get_num_threads()`, set by `--threads`). */
  threads: number;
}

/** A tree and its embedding as torch_sae.py reads them. */
export interface TorchWorld {
  dIn: number;
  nFeatures: number;
  embedding: number[];
  nodes: {
    parent: number | null;
    activeProb: number;
    isReadOut: boolean;
    index: number | null;
    mutuallyExclusiveChildren: boolean;
    magnitudeMean: number;
    magnitudeStd: number;
  }[];
}

/** An SAE's loss plan and optimiser as torch_sae.py reads them. */
export interface TorchSae {
  dIn: number;
  dSae: number;
  applyBDecToInput: boolean;
  l1ByDecoderNorm: boolean;
  terms: {
    end: number;
    detachBelow: number;
    reconMult: number;
    l1Start: number;
    l1End: number;
    l1Mult: number;
  }[];
  adam: { lr: number; beta1: number; beta2: number; eps: number; clipNorm: number };
}

/**
 * The tree and toy-model embedding `[nFeatures][dIn]` as torch_sae.py's world.
 *
 * @throws {RangeError} for a node that fires without its parent (torch_sae.py's sampler is the
 *   published one, without that extension).
 */
export function torchWorld(
  tree: TreeFeatureGenerator,
  embedding: Float32Array,
  dIn: number,
): TorchWorld {
  if (tree.nodes.some((n) => n.activeProbWithoutParent > 0)) {
    throw new RangeError("The PyTorch baseline does not implement activeProbWithoutParent");
  }
  return {
    dIn,
    nFeatures: tree.nFeatures,
    embedding: Array.from(embedding),
    nodes: tree.nodes.map((n) => ({
      parent: n.parent,
      activeProb: n.activeProb,
      isReadOut: n.isReadOut,
      index: n.index,
      mutuallyExclusiveChildren: n.mutuallyExclusiveChildren,
      magnitudeMean: n.magnitudeMean,
      magnitudeStd: n.magnitudeStd,
    })),
  };
}

/**
 * The configuration's loss plan and optimiser (default: the notebook's Adam) as torch_sae.py's
 * SAE. The baseline implements what the benchmark trains: MSE reconstruction terms, the L1
 * penalty (p = 1), optionally weighted by decoder norms, without decoder normalisation.
 *
 * @throws {RangeError} for a configuration outside that.
 */
export function torchSae(config: SaeConfig, adam = PUBLISHED_OPTIMIZER): TorchSae {
  const plan = lossPlan(config);
  const refuse = (what: string) => {
    throw new RangeError(`The PyTorch baseline does not implement ${what}`);
  };
  if (plan.lpNorm !== 1) refuse(`lpNorm ${plan.lpNorm} (only 1)`);
  if (config.normalizeSaeDecoder) refuse("normalizeSaeDecoder");
  if (plan.terms.some((t) => t.reconKind !== "mse")) refuse("the L2 reconstruction loss");
  return {
    dIn: config.dIn,
    dSae: config.dSae,
    applyBDecToInput: config.applyBDecToInput,
    l1ByDecoderNorm: plan.l1ByDecoderNorm,
    terms: plan.terms.map((t) => ({
      end: t.end,
      detachBelow: t.detachBelow,
      reconMult: t.reconMult,
      l1Start: t.l1Start,
      l1End: t.l1End,
      l1Mult: t.l1Mult,
    })),
    adam: { ...adam },
  };
}

/**
 * The Python interpreter to use: Debian's `/usr/bin/python3` (where python3-torch installs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultPython } from "./torch_runner.ts";
 * const python = defaultPython();
 * assert.ok(python === "/usr/bin/python3" || python === "python3");
 * ```
 */
export function defaultPython(): string {
  try {
    Deno.statSync("/usr/bin/python3");
    return "/usr/bin/python3";
  } catch {
    return "python3";
  }
}

/** A running torch_sae.py process. */
export class TorchRunner {
  readonly versions: TorchVersions;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #stderr: Promise<string>;

  private constructor(
    child: Deno.ChildProcess,
    lines: AsyncIterator<string>,
    stderr: Promise<string>,
    versions: TorchVersions,
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = lines;
    this.#stderr = stderr;
    this.versions = versions;
  }

  /**
   * Starts `python script --threads N` and waits for its greeting.
   *
   * @throws {Error} when Python or torch is missing (the message includes Python's stderr).
   */
  static async start(python: string, script: string, threads = 2): Promise<TorchRunner> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(python, {
        args: [script, "--threads", String(threads)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new Error(`Cannot start ${python}: ${error instanceof Error ? error.message : error}`);
    }
    const stderr = new Response(child.stderr).text();
    const lines = readLines(child.stdout);
    const first = await lines.next();
    if (first.done) {
      await child.status;
      const text = (await stderr).trim().split("\n").slice(-1)[0] ?? "";
      throw new Error(`${python} ${script} exited before answering: ${text}`);
    }
    const hello = JSON.parse(first.value) as { hello: TorchVersions };
    return new TorchRunner(child, lines, stderr, hello.hello);
  }

  /** Sends one request and returns its response; a failed request throws its error message. */
  async request<T>(req: Record<string, unknown>): Promise<T> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const line = await this.#lines.next();
    if (line.done) {
      const text = (await this.#stderr).trim().split("\n").slice(-1)[0] ?? "";
      throw new Error(`The PyTorch process exited: ${text}`);
    }
    const response = JSON.parse(line.value) as { ok: boolean; error?: string } & T;
    if (!response.ok) throw new Error(`PyTorch: ${response.error}`);
    return response;
  }

  /** Closes the process's input and waits for it to exit. */
  async close(): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // Already closed.
    }
    await this.#child.status;
    await this.#stderr;
  }
}

/** Lines of a byte stream, without their line ends. */
async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    buffer += decoder.decode(bytes, { stream: true });
    let at: number;
    while ((at = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield buffer;
}
