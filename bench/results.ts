/**
 * How every bench hands in its figures: bench/results/<name>.json (pretty, for people) and one line of JSON on
 * stdout, the last one, which bench/run.ts reads.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const resultsDir = fileURLToPath(new URL("./results/", import.meta.url))

export const publishFigures = (name: string, figures: object): void => {
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(figures, null, 2) + "\n")
  process.stdout.write(JSON.stringify(figures) + "\n")
}
