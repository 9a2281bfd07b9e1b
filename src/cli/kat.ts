/** `tessera kat sframe FILE.json`: runs SFrame known-answer vectors and exits non-zero on any failure. */
import { readFile } from "node:fs/promises"
import { runSFrameKnownAnswers } from "../crypto/sframe-kat.js"

const USAGE = `usage: tessera kat sframe FILE.json

Runs every vector of an SFrame test-vector file in the layout of RFC 9605's (lists "header", "aes_ctr_hmac" and
"sframe"; "cipher_suite" picks the suite, 0x0001-0x0008). Prints one line per failed vector and, last,
"N passed, M failed". Exit code 0 when all pass, 1 when any fails, 2 on bad usage or an unreadable file.`

export interface KatOutput {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
}

const consoleOutput: KatOutput = {
  out: (line) => process.stdout.write(line + "\n"),
  err: (line) => process.stderr.write(line + "\n")
}

/** `args` are the words after `kat`. Returns the process exit code. */
export const runKat = async (args: ReadonlyArray<string>, output: KatOutput = consoleOutput): Promise<number> => {
  if (args.includes("--help") || args.includes("-h")) {
    output.out(USAGE)
    return 0
  }
  const [kind, file, ...rest] = args
  if (kind !== "sframe" || file === undefined || rest.length > 0) {
    output.err(USAGE)
    return 2
  }
  let text: string
  try {
    text = await readFile(file, "utf8")
  } catch (e) {
    output.err(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`)
    return 2
  }
  const report = await runSFrameKnownAnswers(text)
  for (const line of report.failures) output.out(`FAIL ${line}`)
  output.out(`${report.passed} passed, ${report.failed} failed`)
  return report.failed === 0 ? 0 : 1
}
