/** `tessera kat sframe FILE.json` as the CLI entry will call it: exit codes and output lines. */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import path from "node:path"
import { runKat } from "../../src/cli/kat.js"
import { AES256_CTR_HMAC_SFRAME_FILE, readVectorText, SHARED_SFRAME_FILE } from "./vector-files.js"

const capture = async (args: ReadonlyArray<string>) => {
  const out: Array<string> = []
  const err: Array<string> = []
  const code = await runKat(args, { out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out, err }
}

describe("tessera kat sframe", () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tessera-kat-"))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it("passes every vector of the shared RFC 9605 file", async () => {
    const r = await capture(["sframe", SHARED_SFRAME_FILE])
    expect(r).toEqual({ code: 0, out: ["297 passed, 0 failed"], err: [] })
  })

  it("passes tessera's vectors for suites 0x0006-0x0008", async () => {
    expect(await capture(["sframe", AES256_CTR_HMAC_SFRAME_FILE])).toEqual({ code: 0, out: ["15 passed, 0 failed"], err: [] })
  })

  it("fails on a corrupted copy, one line per broken vector, and exits non-zero", async () => {
    const file = JSON.parse(readVectorText(SHARED_SFRAME_FILE).replace(/("(?:kid|ctr)"\s*:\s*)(\d+)/g, '$1"$2"')) as {
      header: Array<{ encoded: string }>
      aes_ctr_hmac: Array<{ ct: string }>
      sframe: Array<{ ct: string; sframe_salt: string }>
    }
    const flip = (hex: string, at: number) => hex.slice(0, at) + (hex[at] === "0" ? "1" : "0") + hex.slice(at + 1)
    file.header[3]!.encoded = flip(file.header[3]!.encoded, 1)
    file.aes_ctr_hmac[1]!.ct = flip(file.aes_ctr_hmac[1]!.ct, 10)
    file.sframe[4]!.ct = flip(file.sframe[4]!.ct, file.sframe[4]!.ct.length - 1)
    file.sframe[0]!.sframe_salt = flip(file.sframe[0]!.sframe_salt, 0)
    // Large KID/CTR values go back as bare JSON numbers, as in the original file.
    const text = JSON.stringify(file, null, 1).replace(/("(?:kid|ctr)"\s*:\s*)"(\d+)"/g, "$1$2")
    const corrupted = path.join(dir, "corrupted.json")
    await writeFile(corrupted, text)
    const r = await capture(["sframe", corrupted])
    expect(r.code).toBe(1)
    expect(r.out.at(-1)).toBe("293 passed, 4 failed")
    expect(r.out.slice(0, -1)).toEqual([
      expect.stringMatching(/^FAIL header\[3\]: encoded mismatch/),
      expect.stringMatching(/^FAIL aes_ctr_hmac\[1\] suite 0x0002: ct mismatch/),
      expect.stringMatching(/^FAIL sframe\[0\] suite 0x0001: sframe_salt mismatch/),
      expect.stringMatching(/^FAIL sframe\[4\] suite 0x0005: ct mismatch/)
    ])
  })

  it("fails on a file that is not a vector file", async () => {
    const junk = path.join(dir, "junk.json")
    await writeFile(junk, "{\"something\": 1}")
    expect(await capture(["sframe", junk])).toEqual({ code: 1, out: ["FAIL file: none of the lists header, aes_ctr_hmac, sframe", "0 passed, 1 failed"], err: [] })
  })

  it("prints usage for --help, and refuses bad usage and unreadable files with exit code 2", async () => {
    const help = await capture(["--help"])
    expect(help.code).toBe(0)
    expect(help.out[0]).toMatch(/^usage: tessera kat sframe FILE\.json/)
    expect((await capture([])).code).toBe(2)
    expect((await capture(["aes", SHARED_SFRAME_FILE])).code).toBe(2)
    const missing = await capture(["sframe", path.join(dir, "nope.json")])
    expect(missing).toEqual({ code: 2, out: [], err: [expect.stringContaining("ENOENT")] })
  })
})
