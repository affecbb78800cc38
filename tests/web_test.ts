/**
 * The browser page without a browser: its model (the β slider's scale, the form's checks, the run
 * a page builds is `deno task balanced`'s SAE), the build (`deno task serve --build-only` writes
 * three static files, refuses a folder of other files, keeps Deno-only code out of `app.js`) and
 * the static server (the build's files and nothing else).
 */
import assert from "node:assert/strict";
import { buildWebPage, WEB_FILES } from "../src/web/build.ts";
import { serveWebPage } from "../src/web/serve.ts";
import { checkPageRun, PAGE_TREES, pageSetup, sliderBeta } from "../src/web/page_model.ts";
import { NOTEBOOK_SAE_CONFIG } from "../src/sae/config.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { initSaeToMatchModel } from "../src/sae/init.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { balancedTree } from "../src/toy/notebook_trees.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test("the β slider runs 0 to 1 in hundredths, then ∞", () => {
  assert.equal(sliderBeta(0), 0);
  assert.equal(sliderBeta(17), 0.17);
  assert.equal(sliderBeta(100), 1);
  assert.equal(sliderBeta(101), Infinity);
});

Deno.test("the form's values are checked, naming the field", () => {
  const ok = { childProbs: [0.02, 0.15, 0.5], beta: 0.17, steps: 24_415, seed: 0 };
  assert.deepEqual(checkPageRun(ok), ok);
  assert.throws(() => checkPageRun({ ...ok, childProbs: [0.1, -0.1, 0.1] }), /child 2's/);
  assert.throws(() => checkPageRun({ ...ok, childProbs: [NaN, 0.1, 0.1] }), /child 1's/);
  assert.throws(() => checkPageRun({ ...ok, steps: 0 }), /steps must be an integer from 1/);
  assert.throws(() => checkPageRun({ ...ok, steps: 1.5 }), /steps/);
  assert.throws(() => checkPageRun({ ...ok, seed: -1 }), /seed/);
});

Deno.test("a page run at β = 0.25 on the balanced tree is deno task balanced's balanced SAE", () => {
  const { model, tree, sae } = pageSetup({
    childProbs: PAGE_TREES.balanced,
    beta: 0.25,
    steps: 1,
    seed: 3,
  });
  const expectedModel = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 3 });
  assert.deepEqual(model.embedding, expectedModel.embedding);
  assert.deepEqual(tree.nodes, balancedTree().nodes);
  const expected = new MatryoshkaSAE({
    ...NOTEBOOK_SAE_CONFIG,
    matryoshkaInnerLossMultipliers: [0.25, 1],
  });
  initSaeToMatchModel(expected, expectedModel, { noiseLevel: 0, featureOrdering: [0, 1, 2, 3] });
  assert.deepEqual(sae.config, expected.config);
  assert.deepEqual(sae.params, expected.params);
});

Deno.test("the build is three static files, without Deno-only code, and is served alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["task", "serve", "--build-only", "--out", `${dir}/web`],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    assert.match(new TextDecoder().decode(run.stdout), /built .*web\/: index\.html \(\d+ kB\)/);
    const names = [...Deno.readDirSync(`${dir}/web`)].map((e) => e.name).sort();
    assert.deepEqual(names, [...WEB_FILES].sort());
    const html = await Deno.readTextFile(`${dir}/web/index.html`);
    assert.match(html, /<script type="module" src="app.js">/);
    const app = await Deno.readTextFile(`${dir}/web/app.js`);
    // No file system, processes or subprocess-only modules reach the browser build.
    for (const api of ["Deno.readFile", "Deno.writeFile", "Deno.Command", "Deno.mkdir", "pdfkit"]) {
      assert.ok(!app.includes(api), `app.js mentions ${api}`);
    }

    await Deno.writeTextFile(`${dir}/notes.txt`, "mine");
    await assert.rejects(buildWebPage(dir), /holds files this command did not write/);
    assert.equal(await Deno.readTextFile(`${dir}/notes.txt`), "mine");

    const address = Promise.withResolvers<Deno.NetAddr>();
    const server = serveWebPage(`${dir}/web`, {
      port: 0,
      hostname: "127.0.0.1",
      onListen: address.resolve,
    });
    try {
      const base = `http://127.0.0.1:${(await address.promise).port}`;
      const index = await fetch(`${base}/`);
      assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(await index.text(), html);
      const js = await fetch(`${base}/app.js`);
      assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert.equal((await js.text()).length, app.length);
      for (const path of ["/notes.txt", "/../deno.json", "/%2e%2e/deno.json", "/app.ts"]) {
        const r = await fetch(`${base}${path}`);
        await r.body?.cancel();
        assert.equal(r.status, 404, path);
      }
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task serve refuses a bad port with the usage", async () => {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["task", "serve", "--port", "70000"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(run.code, 2);
  assert.match(
    new TextDecoder().decode(run.stderr),
    /Cannot parse --port: expected an integer from 0 to 65535, got "70000"/,
  );
});
