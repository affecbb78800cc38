/**
 * Test helper: the environment of a child process started with `clearEnv` (a script outside the
 * repository, a notebook's kernel): only what it needs to find Deno, its cache and the GPU, and to
 * reach the npm registry the way this process does, plus the caller's own variables.
 */

/** Where things are, the module cache and the GPU backend. */
const MACHINE_ENV = ["PATH", "HOME", "XDG_RUNTIME_DIR", "DENO_DIR", "DENO_WEBGPU_BACKEND"];

/**
 * How this machine reaches the npm registry (a child may fetch package metadata): its proxy and
 * the certificate authorities it trusts (Deno reads NODE_EXTRA_CA_CERTS, DENO_CERT and
 * DENO_TLS_CA_STORE), so a TLS-inspecting proxy works for the child as it does for the test run.
 */
const NETWORK_ENV = [
  "NODE_EXTRA_CA_CERTS",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "NPM_CONFIG_REGISTRY",
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
  "https_proxy",
  "http_proxy",
  "no_proxy",
];

/** This process's machine and network variables that are set, with `extra` on top. */
export function subprocessEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...MACHINE_ENV, ...NETWORK_ENV]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}
