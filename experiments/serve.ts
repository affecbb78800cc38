/**
 * `deno task serve`: builds the browser page (src/web/) into a folder of static files and serves
 * that folder on localhost. The server only hands out the built files; training runs in the
 * visitor's browser, on their GPU. `--build-only` writes the folder for any static host.
 */
import {
  buildWebPage,
  nonNegativeIntFlag,
  parseFlags,
  runMain,
  serveWebPage,
  UsageError,
  WEB_FILES,
} from "../mod.ts";

const USAGE = `Usage: deno task serve [options]

Builds the page that trains the notebook's SAEs in the browser (WebGPU, the visitor's own GPU) into
a folder of static files, and serves it on this machine.

Options:
  --out DIR      the built page (default out/web; absent, empty or an earlier build)
  --port N       port to serve on, 0 to 65535 (default 8000; 0: any free port)
  --host NAME    address to listen on (default 127.0.0.1)
  --build-only   write the folder and exit: copy it to any static host
  --help         show this help`;

if (import.meta.main) {
  await runMain(async () => {
    const { values } = parseFlags(Deno.args, {
      out: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      "build-only": { type: "boolean" },
      help: { type: "boolean" },
    }, USAGE);
    if (values.help) {
      console.log(USAGE);
      return;
    }
    const out = values.out ?? "out/web";
    const port = nonNegativeIntFlag("port", values.port, 8000, USAGE, 65535);
    const hostname = values.host ?? "127.0.0.1";
    if (hostname.trim() === "") throw new UsageError(`Invalid --host: expected a name\n\n${USAGE}`);
    const sizes = await buildWebPage(out);
    const kB = (n: number) => `${(n / 1024).toFixed(0)} kB`;
    console.log(
      `built ${out}/: ` + WEB_FILES.map((f) => `${f} (${kB(sizes[f])})`).join(", "),
    );
    if (values["build-only"]) return;
    await serveWebPage(out, { port, hostname }).finished;
  });
}
