/**
 * Balanceability maps: the axes and their refusals, the cells' worlds, the outline of the
 * balanceable region on a hand-made grid, the files, the command line's one-line errors, and one
 * tiny map on the GPU whose map.csv agrees with the sweep's balances.
 */
import assert from "node:assert/strict";
import {
  betaStarMapSvg,
  checkMapSpec,
  MapAxisError,
  type MapCellResult,
  mapCells,
  mapCsv,
  mapGrid,
  outlineSegments,
  parseMapAxis,
  parseMapFixed,
  residualMapSvg,
  runBalanceMap,
} from "../mod.ts";
import { parseMapArgs } from "../experiments/balance_map.ts";
import { gpuTest } from "./_gpu.ts";

Deno.test("an axis is FROM:TO:N (both ends included) or a list, sorted", () => {
  assert.deepEqual(parseMapAxis("child-1=0.02:0.5:5"), {
    parameter: "child-1",
    values: [0.02, 0.14, 0.26, 0.38, 0.5],
  });
  assert.deepEqual(parseMapAxis("PARENT = 0.5,0.1, 0.25", "y"), {
    parameter: "parent",
    values: [0.1, 0.25, 0.5],
  });
  assert.deepEqual(parseMapAxis("children=1:5:5").values, [1, 2, 3, 4, 5]);
  assert.deepEqual(parseMapAxis("child=0.1,0.2").parameter, "child");
});

Deno.test("a bad axis is refused in one line naming the flag and what is allowed", () => {
  const refusals: [string, string, RegExp][] = [
    ["colour=1,2", "x", /^Invalid --x: expected a parameter parent, children, child, child-K/],
    ["child-0=0.1,0.2", "y", /^Invalid --y: expected a parameter/],
    ["child-1", "x", /^Invalid --x: expected PARAMETER=FROM:TO:N or PARAMETER=V1,V2/],
    ["child-1=0:0.5:3", "x", /^Invalid --x: expected child-1 values: a probability in \(0, 1\]/],
    ["parent=0.1,1.5", "y", /^Invalid --y: expected parent values: a probability in \(0, 1\]/],
    ["children=1,2.5", "x", /^Invalid --x: expected children values: an integer from 1 to 1023/],
    ["child-1=0.5:0.1:3", "x", /^Invalid --x: expected FROM:TO:N with FROM < TO/],
    ["child-1=0.1:0.5:1", "x", /^Invalid --x: expected FROM:TO:N .* N from 2 to 10000/],
    ["child-1=0.3", "x", /^Invalid --x: expected at least two values/],
    ["child-1=0.3,0.3", "x", /^Invalid --x: expected each value once, got 0.3 twice/],
    ["child-1=0.1,x", "x", /^Invalid --x: expected PARAMETER=.*got "x"/],
  ];
  for (const [text, flag, message] of refusals) {
    assert.throws(() => parseMapAxis(text, flag), (error: Error) => {
      assert.ok(error instanceof MapAxisError, text);
      assert.match(error.message, message, text);
      assert.ok(!error.message.includes("\n"), text);
      return true;
    });
  }
});

Deno.test("a fixed value is PARAMETER=VALUE in its parameter's range", () => {
  assert.deepEqual(parseMapFixed("child-3=0.15"), { parameter: "child-3", value: 0.15 });
  assert.deepEqual(parseMapFixed("children=4"), { parameter: "children", value: 4 });
  assert.throws(() => parseMapFixed("child-3"), /^MapAxisError: Invalid --fix: expected PARAM/);
  assert.throws(() => parseMapFixed("children=0"), /Invalid --fix: expected children values/);
  assert.throws(() => parseMapFixed("parent=x"), /Invalid --fix: expected PARAMETER=VALUE/);
});

Deno.test("a map needs two different axes, fixes only the others and names existing children", () => {
  const x = parseMapAxis("child-1=0.1,0.2");
  const y = parseMapAxis("child-2=0.1,0.2", "y");
  assert.throws(() => checkMapSpec({ x, y: { ...x } }), /^MapAxisError: Invalid --y: .* other/);
  assert.throws(
    () => checkMapSpec({ x, y, fixed: { "child-2": 0.3 } }),
    /^MapAxisError: Invalid --fix: expected a parameter that no axis sweeps/,
  );
  assert.throws(
    () => checkMapSpec({ x, y, fixed: { "child-4": 0.3 } }),
    /Invalid --fix: .*child-4 needs at least 4 children\), got 3 children/,
  );
  // child-3 must exist in every cell, also those with only two children.
  assert.throws(
    () => checkMapSpec({ x: parseMapAxis("children=2,3"), y: parseMapAxis("child-3=0.1,0.2") }),
    /Invalid --y: .*child-3 needs at least 3 children\), got 2 children/,
  );
  assert.throws(
    () =>
      checkMapSpec({ x: parseMapAxis("child-1=0.01:1:101"), y: parseMapAxis("parent=0.01:1:100") }),
    /Invalid --y: expected at most 10000 cells .*got 10100 cells/,
  );
  assert.doesNotThrow(() => checkMapSpec({ x, y, fixed: { "child-3": 0.15, parent: 0.5 } }));
});

Deno.test("the L1 axis and a fixed L1 are taken, in range only", () => {
  const y = parseMapAxis("child-2=0.1,0.2", "y");
  assert.doesNotThrow(() => checkMapSpec({ x: parseMapAxis("l1=0.01,0.03"), y }));
  const x = parseMapAxis("child-1=0.1,0.2");
  assert.doesNotThrow(() => checkMapSpec({ x, y, fixed: { l1: 0.1 } }));
  assert.throws(() => checkMapSpec({ x, y, fixed: { l1: -1 } }), /Invalid --fix: .*l1/);
  const cells = mapCells({ x: parseMapAxis("l1=0.01,0.03"), y });
  assert.deepEqual(cells.map((c) => c.world.l1Coefficient), [0.01, 0.03, 0.01, 0.03]);
});

Deno.test("cells run row by row from the bottom and hold the notebook's two trees", () => {
  const values = "0.02,0.15,0.5";
  const cells = mapCells({
    x: parseMapAxis(`child-1=${values}`),
    y: parseMapAxis(`child-2=${values}`, "y"),
    fixed: { "child-3": 0.15 },
  });
  assert.equal(cells.length, 9);
  assert.deepEqual(cells.slice(0, 2).map((c) => [c.i, c.j, c.name]), [
    [0, 0, "map-x0-y0"],
    [1, 0, "map-x1-y0"],
  ]);
  const at = (i: number, j: number) => cells.find((c) => c.i === i && c.j === j)!.world;
  assert.deepEqual(at(1, 1), {
    parentProb: 0.25,
    childProbs: [0.15, 0.15, 0.15],
    l1Coefficient: 0.03,
  });
  assert.deepEqual(at(0, 2).childProbs, [0.02, 0.5, 0.15]); // the unbalanced tree, reordered
  const parents = mapCells({ x: parseMapAxis("parent=0.1,0.5"), y: parseMapAxis("children=1,4") });
  assert.deepEqual(parents.at(-1)!.world, {
    parentProb: 0.5,
    childProbs: [0.15, 0.15, 0.15, 0.15],
    l1Coefficient: 0.03,
  });
});

Deno.test("the outline is exactly the cell edges between balanceable and other cells", () => {
  // inside[j][i], row 0 at the bottom; null (no result) counts as not balanceable.
  //   j=2:  –  F  T
  //   j=1:  T  F  F
  //   j=0:  T  T  F
  const inside = [
    [true, true, false],
    [true, false, false],
    [null, false, true],
  ];
  assert.deepEqual(outlineSegments(inside), [
    { x1: 2, y1: 0, x2: 2, y2: 1 },
    { x1: 1, y1: 1, x2: 1, y2: 2 },
    { x1: 2, y1: 2, x2: 2, y2: 3 },
    { x1: 1, y1: 1, x2: 2, y2: 1 },
    { x1: 0, y1: 2, x2: 1, y2: 2 },
    { x1: 2, y1: 2, x2: 3, y2: 2 },
  ]);
  assert.deepEqual(outlineSegments([[true, true], [true, true]]), []);
  assert.deepEqual(outlineSegments([[false, null]]), []);
  assert.throws(() => outlineSegments([[true], [true, false]]), /row 1 has 2/);
});

/** Cells of a hand-made 3 × 3 map with the verdicts of the outline test. */
function handMadeCells(): MapCellResult[] {
  const spec = {
    x: parseMapAxis("child-1=0.1,0.2,0.3"),
    y: parseMapAxis("child-2=0.1,0.2,0.3", "y"),
  };
  const verdict = [
    [true, true, false],
    [true, false, false],
    [null, false, true],
  ];
  return mapCells(spec).map((c) => {
    const v = verdict[c.j]![c.i]!;
    return {
      ...c,
      sweep: "sweep",
      betaStar: v === null ? null : c.i === 2 && c.j === 1 ? Infinity : 0.1 * (c.i + 1),
      maxResidual: v === null ? null : v ? 0.005 : 0.2,
      balanceable: v,
      tolerance: 0.02,
      reason: v === null ? "every SAE of the tree diverged" : null,
    };
  });
}

Deno.test("the figures draw every cell, ∞ hatched, no result grey, the outline as 6 edges", () => {
  const cells = handMadeCells();
  const grid = mapGrid({
    x: parseMapAxis("child-1=0.1,0.2,0.3"),
    y: parseMapAxis("child-2=0.1,0.2,0.3", "y"),
  }, cells);
  for (const svg of [betaStarMapSvg(grid), residualMapSvg(grid)]) {
    assert.equal(svg.match(/class="cell"/g)?.length, 9);
    const outline = /<path class="outline" d="([^"]+)"/.exec(svg)![1]!;
    assert.equal(outline.match(/M/g)?.length, 6);
    assert.match(svg, /data-i="0" data-j="2" data-value="" [^>]*fill="#bfbfbf"/);
    assert.ok(svg.includes(">p(child 1)</text>") && svg.includes(">p(child 2)</text>"));
  }
  const beta = betaStarMapSvg(grid);
  assert.match(
    beta,
    /data-i="2" data-j="1" data-value="Infinity" [^>]*fill="url\(#map-infinity\)"/,
  );
  assert.ok(beta.includes(">∞</text>"));
});

Deno.test("map.csv has one row per cell: axis values, world, β*, residual, verdict", () => {
  const lines = mapCsv({ x: "child-1", y: "child-2" }, handMadeCells()).trim().split("\n");
  assert.equal(lines.length, 10);
  assert.equal(
    lines[0],
    "child-1,child-2,parent_prob,child_probs,l1_coefficient,beta_star,max_residual,balanceable," +
      "tolerance,tree,sweep,reason",
  );
  assert.equal(lines[1], "0.1,0.1,0.25,0.1;0.1;0.15,0.03,0.1,0.005,true,0.02,map-x0-y0,sweep,");
  assert.equal(lines[6], "0.3,0.2,0.25,0.3;0.2;0.15,0.03,inf,0.2,false,0.02,map-x2-y1,sweep,");
  assert.equal(
    lines[7],
    "0.1,0.3,0.25,0.1;0.3;0.15,0.03,,,,0.02,map-x0-y2,sweep,every SAE of the tree diverged",
  );
});

Deno.test("the command line: axes, fixed values, sweep settings; bad flags refused", () => {
  const command = parseMapArgs([
    "--x=child-1=0.02:0.5:8",
    "--y",
    "child-2=0.02,0.5",
    "--fix",
    "child-3=0.15",
    "--betas",
    "inf,0,0.25",
    "--steps",
    "100",
    "--refine",
    "0",
    "--format",
    "svg,png",
  ]);
  assert.notEqual(command, "help");
  if (command === "help") return;
  const { options } = command;
  assert.equal(options.x.values.length, 8);
  assert.deepEqual(options.fixed, { "child-3": 0.15 });
  assert.deepEqual(options.betas, [0, 0.25, Infinity]);
  assert.deepEqual([options.steps, options.refine, options.out], [100, 0, "out/balance_map"]);
  assert.deepEqual(options.figureFormats, ["svg", "png"]);
  const xy = ["--x", "child-1=0.1,0.2", "--y", "child-2=0.1,0.2"];
  for (
    const [args, message] of [
      [["--x", "child-1=0.1,0.2"], /^Missing --y: a map sweeps two parameters/],
      [[...xy, "--steps", "0"], /^Invalid --steps: expected an integer from 1 to/],
      [[...xy, "--steps", "-3"], /^Invalid --steps: its value starts with "-"/],
      [[...xy, "--format", "jpg"], /^Invalid --format: expected svg, png or pdf/],
      [[...xy, "--tolerance", "0"], /^Invalid --tolerance: expected a number > 0/],
      [[...xy, "--fix", "parent=0.1", "--fix", "parent=0.2"], /^Invalid --fix: .* parent twice/],
      [[...xy, "--colour"], /^Unknown option '--colour'/],
    ] as [string[], RegExp][]
  ) {
    assert.throws(() => parseMapArgs(args), (error: Error) => {
      assert.match(error.message, message, args.join(" "));
      assert.ok(!error.message.includes("\n"), args.join(" "));
      return true;
    });
  }
});

Deno.test("deno task map stops on bad input with one line, exit 2 and no stack trace", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "experiments/balance_map.ts",
        ...args,
      ],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "piped",
    }).output();
  const bad = await run(["--x", "l1=-0.01,0.03", "--y", "child-2=0.1,0.2"]);
  const stderr = new TextDecoder().decode(bad.stderr).trim();
  assert.equal(bad.code, 2);
  assert.equal(stderr.split("\n").length, 1, stderr);
  assert.match(stderr, /^Invalid --x: /);
  assert.match(stderr, /≥ 0/);
  const betas = await run(["--x", "child-1=0.1,0.2", "--y", "child-2=0.1,0.2", "--betas", "-1"]);
  const line = new TextDecoder().decode(betas.stderr).trim();
  assert.equal(betas.code, 2);
  assert.match(line, /^Invalid --betas: /);
  assert.ok(!line.includes("\n") && !line.includes("    at "), line);
});

gpuTest(
  "a 2 × 2 map writes its files and map.csv agrees with the sweep's balances",
  async (gpu) => {
    const dir = await Deno.makeTempDir();
    try {
      const options = {
        out: `${dir}/map`,
        x: parseMapAxis("child-1=0.02,0.5"),
        y: parseMapAxis("child-2=0.15,0.5", "y"),
        fixed: { "child-3": 0.15 },
        betas: [0, 0.25, Infinity],
        seeds: 1,
        steps: 150,
        batchSize: 32,
        refine: 1,
        evalRows: 1000,
        figureFormats: ["svg", "png"] as const,
        quiet: true,
        log: () => {},
      };
      const result = await runBalanceMap(options, gpu);
      const names = [...Deno.readDirSync(`${dir}/map`)].map((e) => e.name).sort();
      assert.deepEqual(names, [
        "map.csv",
        "map.json",
        "map_beta_star.png",
        "map_beta_star.svg",
        "map_residual.png",
        "map_residual.svg",
        "map_spec.json",
        "sweep",
      ]);
      assert.ok((await Deno.stat(`${dir}/map/sweep/sweep.csv`)).isFile);
      assert.equal(result.sweeps.length, 1);
      const [header, ...rows] = (await Deno.readTextFile(`${dir}/map/map.csv`)).trim().split("\n");
      const column = (name: string) => header!.split(",").indexOf(name);
      assert.equal(rows.length, 4);
      const round = (v: number) => v === Infinity ? "inf" : String(Number(v.toPrecision(8)));
      for (const { tree, balance } of result.sweeps[0]!.balances) {
        const row = rows.find((r) => r.split(",")[column("tree")] === tree.name)?.split(",");
        assert.ok(row, tree.name);
        assert.equal(typeof balance, "object", `${tree.name}: ${balance}`);
        if (typeof balance === "string") continue;
        assert.equal(row[column("beta_star")], round(balance.betaStar));
        assert.equal(row[column("max_residual")], round(balance.maxResidual));
        assert.equal(row[column("balanceable")], String(balance.balanceable));
        assert.equal(row[column("tolerance")], String(balance.tolerance));
        assert.deepEqual(
          row[column("child_probs")]!.split(";").map(Number),
          tree.childProbs,
        );
      }
      const json = JSON.parse(await Deno.readTextFile(`${dir}/map/map.json`));
      assert.equal(json.cells.length, 4);
      assert.deepEqual(json.sweep.betas, [0, 0.25, "inf"]);
      const svg = await Deno.readTextFile(`${dir}/map/map_residual.svg`);
      assert.equal(svg.match(/class="cell"/g)?.length, 4);
      // A second start is refused; --resume trains nothing and writes the same map.csv.
      await assert.rejects(runBalanceMap(options, gpu), /already holds one; pass --resume/);
      const before = await Deno.readTextFile(`${dir}/map/map.csv`);
      const again = await runBalanceMap({ ...options, resume: true }, gpu);
      assert.equal(again.sweeps[0]!.chunksTrained, 0);
      assert.equal(await Deno.readTextFile(`${dir}/map/map.csv`), before);
      // Another map in the same folder is refused, naming the recorded spec.
      const other = { ...options, resume: true, fixed: { "child-3": 0.3 } };
      await assert.rejects(runBalanceMap(other, gpu), /Cannot resume the map .* differ/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
