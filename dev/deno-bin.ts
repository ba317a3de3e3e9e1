// The real Deno binary from the `deno` npm package. Its `bin.cjs` wrapper runs the binary with
// spawnSync, so signalling the wrapper would leave Deno running: the stack and `npm run
// start:deno` run the binary itself. `node dev/deno-bin.ts` prints its path.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

/** Absolute path of the Deno executable (the package links it into place on first use). */
export function denoBinary(): string {
  const install = createRequire(import.meta.url)("deno/install_api.cjs") as { runInstall(): string };
  return install.runInstall();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(denoBinary());
}
