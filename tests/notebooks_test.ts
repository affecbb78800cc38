/**
 * The Jupyter notebooks run end to end on Deno's kernel with Debian's Jupyter packages (nbclient,
 * through `tests/run_notebook.py`, shortened by `NOTEBOOK_STEPS`): every cell succeeds, the
 * figures show inline as SVG, the tables and verdicts are printed under their own cells, and the
 * seed notebook's PDFs are saved; a notebook with a failing cell fails the run. The kernel is this
 * Deno, registered in a temporary `JUPYTER_PATH` (nothing is installed for the user). Where
 * Debian's python3-nbclient is missing the tests are skipped; CI installs it.
 */
import assert from "node:assert/strict";
import { subprocessEnv } from "./_subprocess_env.ts";

const notebooks = new URL("../notebooks/", import.meta.url).pathname;
const STEPS = "300";

/** Debian's Python, where python3-nbclient installs (a pyenv `python3` on PATH may lack it). */
const PYTHON = "/usr/bin/python3";
const RUNNER = new URL("./run_notebook.py", import.meta.url).pathname;

const nbclient = await new Deno.Command(PYTHON, {
  args: ["-c", "import nbclient"],
  stdout: "null",
  stderr: "null",
}).output().then((r) => r.success, () => false);

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  text?: string | string[];
  ename?: string;
}

interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
}

const joined = (text: string | string[] | undefined) =>
  Array.isArray(text) ? text.join("") : text ?? "";

/**
 * Runs `tests/run_notebook.py` on a notebook with this Deno registered as the `deno` kernel in a
 * temporary `JUPYTER_PATH`; returns the exit status, stderr and the executed notebook's code cells.
 */
async function runNotebook(
  path: string,
): Promise<{ code: number; stderr: string; cells: Cell[] }> {
  const tmp = await Deno.makeTempDir({ prefix: "matryoshka-notebook-" });
  try {
    await Deno.mkdir(`${tmp}/jupyter/kernels/deno`, { recursive: true });
    await Deno.writeTextFile(
      `${tmp}/jupyter/kernels/deno/kernel.json`,
      JSON.stringify({
        argv: [Deno.execPath(), "jupyter", "--kernel", "--conn", "{connection_file}"],
        display_name: "Deno",
        language: "typescript",
      }),
    );
    const env = subprocessEnv({
      NOTEBOOK_STEPS: STEPS,
      JUPYTER_PATH: `${tmp}/jupyter`,
      JUPYTER_RUNTIME_DIR: `${tmp}/runtime`,
      NO_COLOR: "1",
    });
    const executed = `${tmp}/executed.ipynb`;
    const run = await new Deno.Command(PYTHON, {
      args: [RUNNER, path, executed, "--kernel", "deno"],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    if (run.code !== 0) return { code: run.code, stderr, cells: [] };
    const notebook = JSON.parse(await Deno.readTextFile(executed));
    const cells = (notebook.cells as Cell[]).filter((c) => c.cell_type === "code");
    return { code: 0, stderr, cells };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Executes one of the project's notebooks; every cell must succeed. */
async function execute(name: string): Promise<Cell[]> {
  const { code, stderr, cells } = await runNotebook(`${notebooks}${name}`);
  assert.equal(code, 0, `${name} failed:\n${stderr.slice(-3000)}`);
  for (const [i, cell] of cells.entries()) {
    for (const output of cell.outputs ?? []) {
      assert.notEqual(output.output_type, "error", `code cell ${i}: ${output.ename}`);
    }
  }
  return cells;
}

/** The SVG figures displayed, in order (nbformat stores text as a string or a list of lines). */
const svgs = (cells: Cell[]) =>
  cells.flatMap((c) => c.outputs ?? []).map((o) => o.data?.["image/svg+xml"])
    .filter((svg) => svg !== undefined).map((svg) => joined(svg as string | string[]));

const printed = (cells: Cell[]) =>
  cells.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "stream")
    .map((o) => joined(o.text)).join("");

Deno.test({
  name: "the seed notebook runs cell for cell: four SAEs, their heatmaps inline, PDFs saved",
  ignore: !nbclient,
  sanitizeResources: false,
  fn: async () => {
    const plots = `${notebooks}plots`;
    await Deno.remove(plots, { recursive: true }).catch(() => {});
    const cells = await execute("balancing_hedging_and_absorption.ipynb");
    const figures = svgs(cells);
    assert.deepEqual(
      figures.map((svg) =>
        /<title>([^<]*)<\/title>/.exec(svg)?.[1] ?? /class="title"[^>]*>([^<]*)</.exec(svg)?.[1]
      ),
      [
        "Detached Matryoshka SAE (β = ∞)",
        "Standard SAE (β = 0)",
        "Balanced Matryoshka SAE (β = 0.25)",
        "Unbalanceable Matryoshka SAE (β = 0.17)",
      ],
    );
    for (const svg of figures) assert.equal(svg.match(/class="cell"/g)?.length, 32);
    const text = printed(cells);
    assert.match(text, /Balanced Matryoshka SAE: encoder\nlatent +f1 +f2 +f3 +f4\n1 /);
    assert.match(text, /parent latent: encoder /);
    // Each output sits under the cell that made it: the balanced SAE's table beside its figure.
    const tableCell = cells.find((c) => joined(c.source).includes('cosSimTable("Balanced'))!;
    assert.match(printed([tableCell]), /^Balanced Matryoshka SAE: encoder\n/);
    assert.match(svgs([tableCell]).join(""), /Balanced Matryoshka SAE \(β = 0\.25\)/);
    assert.equal(text.match(new RegExp(`^${STEPS} steps, final loss \\d`, "gm"))?.length, 4);
    for (
      const name of [
        "toy_sae_mat_detached",
        "toy_sae_abs",
        "toy_mat_balanced",
        "toy_mat_unbalanceable",
      ]
    ) {
      const head = (await Deno.readFile(`${plots}/${name}.pdf`)).slice(0, 5);
      assert.equal(new TextDecoder().decode(head), "%PDF-", name);
    }
  },
});

Deno.test({
  name: "the sweep notebook runs: two sweeps, their verdicts and four figures inline",
  ignore: !nbclient,
  sanitizeResources: false,
  fn: async () => {
    const out = `${notebooks}out/sweep_${STEPS}_steps`;
    await Deno.remove(out, { recursive: true }).catch(() => {});
    const cells = await execute("sweep.ipynb");
    const figures = svgs(cells);
    assert.equal(figures.length, 4);
    assert.ok(figures[0]!.includes("balanced: latent 0 encoder"), "the balanced tree's β curve");
    assert.ok(figures[2]!.includes("β*"), "β* against the third child's probability");
    const verdicts = printed(cells).split("\n").filter((l) =>
      /^\S+: (no verdict|balanceable|not balanceable) \(β\* = /.test(l)
    );
    assert.deepEqual(verdicts.map((l) => l.split(":")[0]), [
      "balanced",
      "unbalanced",
      "probs-0.02-0.15-0.02",
      "probs-0.02-0.15-0.1",
      "probs-0.02-0.15-0.2",
      "probs-0.02-0.15-0.35",
      "probs-0.02-0.15-0.5",
    ]);
    const json = JSON.parse(await Deno.readTextFile(`${out}/third_child/sweep.json`));
    assert.equal(json.settings.steps, Number(STEPS));
  },
});

Deno.test({
  name: "a notebook whose cell throws fails the run, naming the error",
  ignore: !nbclient,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const cell = (id: string, source: string) => ({
        cell_type: "code",
        id,
        execution_count: null,
        metadata: {},
        outputs: [],
        source,
      });
      await Deno.writeTextFile(
        `${dir}/fails.ipynb`,
        JSON.stringify({
          cells: [cell("a", "const x = 1;"), cell("b", 'throw new Error("boom " + x);')],
          metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
          nbformat: 4,
          nbformat_minor: 5,
        }),
      );
      const { code, stderr } = await runNotebook(`${dir}/fails.ipynb`);
      assert.equal(code, 1);
      assert.match(stderr, /a cell failed/);
      assert.match(stderr, /boom 1/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
