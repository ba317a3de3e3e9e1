import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Stand-ins and the Worker are real servers on loopback; a slow shared machine needs headroom.
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // CI also keeps a JSON report, from which .ci/run prints the plain "N passed, N failed" line.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: "dist/test-results.json" },
  },
});
