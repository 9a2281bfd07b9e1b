/** Every case of the shared known-answer files, in Node (the same suites run in Chromium in browser.test.ts). */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { runSFrameKnownAnswers } from "../../src/crypto/sframe-kat.js"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import path from "node:path"
import {
  AES256_CTR_HMAC_SFRAME_FILE,
  readVectorText,
  repoRoot,
  SHARED_SFRAME_FILE,
  sharedVectorDir,
  wycheproofTexts
} from "./vector-files.js"
import { expectedUnsupportedAesGcm, NODE_UNSUPPORTED_AES_GCM } from "./expected-unsupported.js"
import { runWycheproof, type WycheproofReports } from "./wycheproof-suites.js"

describe("known-answer vectors in Node", () => {
  let reports: WycheproofReports
  const texts = wycheproofTexts()
  beforeAll(async () => {
    reports = await runWycheproof(texts)
  })

  it("Wycheproof AES-GCM: every case as its result says; IV sizes OpenSSL refuses are rejected and listed", () => {
    const r = reports.aesGcm
    expect(r.total).toBe(316)
    expect(r.byResult).toEqual({ valid: 229, invalid: 87 })
    expect(r.failures).toEqual([])
    // Node's OpenSSL-backed WebCrypto takes GCM IVs of 96..2048 bits only: 40 valid cases use others.
    expect(r.unsupported).toEqual(expectedUnsupportedAesGcm(texts.aesGcm, NODE_UNSUPPORTED_AES_GCM))
    expect(r.unsupported).toHaveLength(40)
    expect(r.passed).toBe(316 - 40)
  })

  it("Wycheproof HKDF-SHA-256: all 86 cases, the 3 oversized outputs refused", () => {
    expect(reports.hkdf).toEqual({ total: 86, passed: 86, byResult: { valid: 83, invalid: 3 }, failures: [], unsupported: [] })
  })

  it("Wycheproof HMAC-SHA-256: all 174 cases, the 108 modified tags rejected", () => {
    expect(reports.hmac).toEqual({ total: 174, passed: 174, byResult: { valid: 66, invalid: 108 }, failures: [], unsupported: [] })
  })

  it("Wycheproof RSA-PSS-4096-SHA-256 (salt 32) through identity.ts: all 108 cases", () => {
    expect(reports.rsaPss).toEqual({ total: 108, passed: 108, byResult: { valid: 63, invalid: 45 }, failures: [], unsupported: [] })
  })

  for (const engine of ["node-crypto", "webcrypto"] as const) {
    it(`SFrame RFC 9605 vectors (${engine}): 289 headers, 3 AES-CTR+HMAC, 5 full SFrame cases`, async () => {
      expect(await runSFrameKnownAnswers(readVectorText(SHARED_SFRAME_FILE), engine)).toEqual({ passed: 297, failed: 0, failures: [] })
    })

    it(`SFrame suites 0x0006-0x0008 (${engine}) against the independent Python reference`, async () => {
      expect(await runSFrameKnownAnswers(readVectorText(AES256_CTR_HMAC_SFRAME_FILE), engine)).toEqual({
        passed: 15,
        failed: 0,
        failures: []
      })
    })
  }
})

describe("the repository's copy of the public vectors", () => {
  // The digests were taken from the shared originals when the copy was made. Beside a CI clone (and in the
  // workplace) the originals are there too and must still match; a newcomer's clone has only the copy and its digests.
  it("matches the digests pinned in SHA256SUMS, and the shared originals where they are beside the repository", () => {
    const publicDir = path.join(repoRoot, "test/vectors/public")
    const pinned = new Map(
      readFileSync(path.join(publicDir, "SHA256SUMS"), "utf8").trim().split("\n").map((line) => {
        const [digest, name] = line.split(/\s+/)
        return [name!, digest!] as const
      })
    )
    const names = readdirSync(publicDir).filter((name) => name.endsWith(".json")).sort()
    expect(names.length).toBeGreaterThanOrEqual(5)
    expect([...pinned.keys()].sort()).toEqual(names)
    const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex")
    for (const name of names) expect(sha256(path.join(publicDir, name)), name).toBe(pinned.get(name))
    if (existsSync(sharedVectorDir)) {
      const originals = readdirSync(sharedVectorDir).filter((name) => name.endsWith(".json")).sort()
      expect(originals).toEqual(names)
      for (const name of originals) expect(sha256(path.join(sharedVectorDir, name)), name).toBe(pinned.get(name))
    }
  })
})
