/**
 * A static file server for a built page (`build.ts`): it hands out the build's files and nothing
 * else (any other path is 404); all computing happens in the browser.
 */
import { WEB_FILES } from "./build.ts";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
};

/**
 * Serves the built files of `dir` on `hostname:port` (port 0: any free port); `shutdown()` the
 * returned server to stop.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildWebPage } from "./build.ts";
 * import { serveWebPage } from "./serve.ts";
 * const dir = await Deno.makeTempDir();
 * await buildWebPage(dir);
 * const listening = Promise.withResolvers<Deno.NetAddr>();
 * const server = serveWebPage(dir, { port: 0, hostname: "127.0.0.1", onListen: listening.resolve });
 * const page = await fetch(`http://127.0.0.1:${(await listening.promise).port}/`);
 * assert.match(await page.text(), /<title>matryoshka-gpu/);
 * await server.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function serveWebPage(
  dir: string,
  { port, hostname, onListen }: {
    port: number;
    hostname: string;
    onListen?: (address: Deno.NetAddr) => void;
  },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    port,
    hostname,
    onListen: onListen ?? (({ hostname, port }) => {
      console.log(`serving ${dir}/ at http://${hostname}:${port}/`);
    }),
  }, async (request) => {
    const path = new URL(request.url).pathname;
    const name = path === "/" ? "index.html" : path.slice(1);
    if (!(WEB_FILES as readonly string[]).includes(name)) {
      return new Response("not found", { status: 404 });
    }
    const body = await Deno.readFile(`${dir}/${name}`);
    return new Response(body, {
      headers: { "content-type": TYPES[name.split(".").pop()!]!, "cache-control": "no-cache" },
    });
  });
}
