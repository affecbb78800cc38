/// <reference lib="dom" />
/**
 * The browser page in a real browser: `deno task serve`'s build, served on localhost, driven in
 * Debian's headless Chromium (WebGPU on its software adapter, SwiftShader on this project's
 * machines) by
 * Puppeteer (`puppeteer-core`, which runs under the suite's permissions; Playwright asks for all). The balanced SAE trains for a shortened schedule while the progress bar, heatmaps
 * and loss curve update; its encoder table equals the library's for the same seed in Deno within
 * 0.01 (two WebGPU implementations compile the same WGSL); a custom tree opens its probabilities
 * and a bad one is refused by name; the notebook's four SAEs train side by side and match too; a browser without WebGPU gets the page that says what to do. Screenshots
 * before, during and after training, and of the four, are written to `out/screenshots/` for a
 * person to look at. Skipped where `/usr/bin/chromium` is missing (CI installs it).
 */
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- a test-only package, pinned where it is used
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.16.0";
import { hasGpu } from "./_gpu.ts";
import { buildWebPage } from "../src/web/build.ts";
import { serveWebPage } from "../src/web/serve.ts";
import { PAGE_TREES, type PageRun, pageSetups, readParams } from "../src/web/page_model.ts";
import { NOTEBOOK_SAES } from "../src/sae/notebook_saes.ts";
import { trainToySaes } from "../src/sae/train.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
const SCREENSHOTS = new URL("../out/screenshots/", import.meta.url).pathname;
/** Largest |page − library| of a cosine, for the same SAE, seed and steps. */
const TOLERANCE = 0.01;

/** Flags of the probe in the machine notes: no background networking on a closed network. */
const QUIET_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WEBGPU_FLAGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan"];

async function withPage(
  flags: string[],
  fn: (page: Page, url: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "matryoshka-web-" });
  let server: Deno.HttpServer | undefined;
  let browser: Browser | undefined;
  try {
    await buildWebPage(`${dir}/web`);
    const address = Promise.withResolvers<Deno.NetAddr>();
    server = serveWebPage(`${dir}/web`, {
      port: 0,
      hostname: "127.0.0.1",
      onListen: address.resolve,
    });
    const { port } = await address.promise;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: [...QUIET_FLAGS, ...flags],
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 1300 });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => document.body.dataset.state !== "loading");
    await fn(page, `http://127.0.0.1:${port}/`);
    assert.deepEqual(errors, [], "no uncaught errors on the page");
  } finally {
    await browser?.close();
    await server?.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const state = (page: Page) => page.evaluate(() => document.body.dataset.state);
const text = (page: Page, selector: string) => page.$eval(selector, (el) => el.textContent ?? "");
const attr = (page: Page, selector: string, name: string) =>
  page.$eval(selector, (el, name) => el.getAttribute(name), name);
const count = (page: Page, selector: string) => page.$$eval(selector, (els) => els.length);
/** Sets a form field as a visitor would (its `input` and `change` events fire). */
const setValue = (page: Page, selector: string, value: string) =>
  page.$eval(selector, (el, value) => {
    (el as HTMLInputElement).value = value;
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
  }, value);

async function waitDone(page: Page): Promise<void> {
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state!), {
    timeout: 300_000,
  });
  assert.equal(await state(page), "done", await text(page, "#status-text"));
}

/** The library's encoder tables for these runs, trained together in Deno. */
async function libraryEncoders(runs: PageRun[]): Promise<number[][][]> {
  const setups = pageSetups(runs);
  await trainToySaes(
    setups.map(({ sae, model, tree }) => ({ sae, model, tree })),
    { steps: runs[0]!.steps, seed: runs[0]!.seed, quiet: true },
  );
  return setups.map(({ sae, model }) => readParams(sae.params, sae.layout, model).encoder);
}

function assertTablesClose(page: number[][], library: number[][], what: string): void {
  let worst = 0;
  page.forEach((row, l) =>
    row.forEach((v, f) => worst = Math.max(worst, Math.abs(v - library[l]![f]!)))
  );
  assert.ok(worst <= TOLERANCE, `${what}: largest |page − library| = ${worst.toFixed(4)}`);
}

const screenshot = async (page: Page, name: string) => {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
};

Deno.test({
  name: "the page trains the balanced SAE live in Chromium, as the library does in Deno",
  ignore: !hasChromium || !hasGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPage(WEBGPU_FLAGS, async (page) => {
      assert.equal(await state(page), "ready", await text(page, "#no-webgpu-reason"));
      assert.match(await text(page, "#adapter"), /^adapter: .+\[.+browser/);
      await screenshot(page, "page_before");
      const run: PageRun = { childProbs: PAGE_TREES.balanced, beta: 0.25, steps: 4000, seed: 0 };
      await setValue(page, "#steps", String(run.steps));
      await setValue(page, "#beta", "101");
      assert.equal(await text(page, "#beta-label"), "β = ∞");
      await setValue(page, "#beta", "25");
      assert.equal(await text(page, "#beta-label"), "β = 0.25");
      await page.click("#train");
      await page.waitForFunction(() => {
        const bar = document.getElementById("progress") as HTMLProgressElement;
        return document.body.dataset.state !== "training" || (bar.value >= 0.1 && bar.value < 1);
      }, { timeout: 300_000 });
      if (await state(page) === "training") {
        // Mid-run: the heatmaps, loss curve and status already show the run so far.
        assert.match(await text(page, "#status-text"), /^step [\d,]+ of 4,000/);
        assert.ok(await count(page, "#loss svg .line") >= 1, "a loss curve");
        await screenshot(page, "page_during");
      }
      await waitDone(page);
      await screenshot(page, "page_after");
      assert.match(await text(page, "#verdict"), /^parent latent: encoder /);
      assert.match(await text(page, "#table"), /^encoder \(cos with true features\)/);
      assert.equal(await count(page, "#heatmap rect.cell"), 32);
      const onPage = JSON.parse(await attr(page, "#heatmap", "data-encoder") ?? "null");
      const [library] = await libraryEncoders([run]);
      assertTablesClose(onPage, library!, "balanced SAE");
      assert.ok(Math.abs(onPage[0][1]) < 0.05, "β = 0.25 leaves latent 0 near the pure parent");
    }),
});

Deno.test({
  name: "the page trains the notebook's four SAEs side by side, as the library does",
  ignore: !hasChromium || !hasGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPage(WEBGPU_FLAGS, async (page) => {
      // A custom tree: its probabilities open for editing, and a bad one is refused by name.
      await page.select("#tree", "custom");
      assert.equal(await page.$eval("#p3", (el) => (el as HTMLInputElement).disabled), false);
      await setValue(page, "#p3", "1.5");
      await page.click("#train");
      await page.waitForFunction(() => document.body.dataset.state === "error");
      assert.match(await text(page, "#status-text"), /child 3's probability must be from 0 to 1/);
      await page.select("#tree", "balanced");
      assert.equal(await page.$eval("#p3", (el) => (el as HTMLInputElement).value), "0.15");

      await setValue(page, "#steps", "1500");
      await page.click("#train-four");
      await waitDone(page);
      await screenshot(page, "page_four");
      const names = await page.$$eval(
        "#four-grid .figure",
        (els) => els.map((el) => (el as HTMLElement).dataset.sae),
      );
      assert.deepEqual(names, NOTEBOOK_SAES.map((s) => s.name));
      const verdicts = await page.$$eval(
        "#four-grid .verdict",
        (els) => els.map((el) => el.textContent ?? ""),
      );
      assert.equal(verdicts.length, 4);
      verdicts.forEach((v) => assert.match(v, /^parent latent: encoder /));
      const library = await libraryEncoders(NOTEBOOK_SAES.map((spec) => ({
        childProbs: PAGE_TREES[spec.tree],
        beta: spec.beta ?? Infinity,
        steps: 1500,
        seed: 0,
      })));
      for (const [i, spec] of NOTEBOOK_SAES.entries()) {
        const table = await attr(page, `#four-grid [data-sae="${spec.name}"]`, "data-encoder");
        assertTablesClose(JSON.parse(table!), library[i]!, spec.name);
      }
    }),
});

Deno.test({
  name: "a browser without WebGPU gets a page that says what to do",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPage([], async (page) => {
      assert.equal(await state(page), "no-webgpu");
      assert.equal(await page.$eval("#no-webgpu", (el) => (el as HTMLElement).hidden), false);
      assert.equal(await page.$eval("#app", (el) => (el as HTMLElement).hidden), true);
      assert.match(await text(page, "#no-webgpu"), /--enable-unsafe-webgpu/);
      await screenshot(page, "page_no_webgpu");
    }),
});
