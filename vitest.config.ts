import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A real PostgreSQL for every run: the local one, or a private throw-away cluster (see the file).
    globalSetup: ["test/support/postgres-global.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Server processes, Postgres databases and Chromium share two cores: keep parallelism modest.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ["default"]
  }
})
