/**
 * Runs the Wycheproof vector files through the primitives tessera uses (src/crypto's HKDF, HMAC and identity
 * signature verification; WebCrypto AES-GCM as session.ts and the GCM SFrame suites call it). Environment-free:
 * the Node tests and the Chromium page run exactly this code, so both report in the same shape.
 *
 * A case passes when the outcome matches its `result`: a valid case gives the expected output, an invalid one is
 * rejected, an acceptable one may do either. A valid case that WebCrypto refuses outright (a key or IV size this
 * engine does not implement) is not a pass and not a failure: it is listed under `unsupported` with its
 * parameters, so the test can assert exactly which cases those are.
 */
import { bufferSource, equalBytes, fromHex } from "../../src/crypto/bytes.js"
import { verifyIdentitySignature } from "../../src/crypto/identity.js"
import { hkdf, hmac, importHmacKey } from "../../src/crypto/kdf.js"

export interface SuiteReport {
  readonly total: number
  readonly passed: number
  readonly byResult: Record<string, number>
  /** tcIds (with a reason) whose outcome contradicted their `result`. */
  readonly failures: ReadonlyArray<string>
  /** Valid cases the engine refused, as "tcId:keySize/ivSize". */
  readonly unsupported: ReadonlyArray<string>
}

interface WycheproofFile {
  readonly testGroups: ReadonlyArray<Record<string, unknown> & { readonly tests: ReadonlyArray<Record<string, unknown>> }>
}

type Outcome = { readonly kind: "pass" } | { readonly kind: "fail"; readonly why: string } | { readonly kind: "unsupported" }

const pass: Outcome = { kind: "pass" }
const fail = (why: string): Outcome => ({ kind: "fail", why })

const hex = (t: Record<string, unknown>, name: string): Uint8Array => fromHex(String(t[name] ?? ""))

/** Valid must succeed; invalid must not; acceptable may do either. */
const judge = (result: unknown, succeeded: boolean): Outcome => {
  if (result === "acceptable") return pass
  if (result === "valid") return succeeded ? pass : fail("valid case rejected")
  return succeeded ? fail("invalid case accepted") : pass
}

const runFile = async (
  text: string,
  runCase: (group: Record<string, unknown>, test: Record<string, unknown>) => Promise<Outcome>,
  label: (group: Record<string, unknown>, test: Record<string, unknown>) => string
): Promise<SuiteReport> => {
  const file = JSON.parse(text) as WycheproofFile
  let total = 0
  let passed = 0
  const byResult: Record<string, number> = {}
  const failures: Array<string> = []
  const unsupported: Array<string> = []
  for (const group of file.testGroups) {
    for (const test of group.tests) {
      total++
      const result = String(test["result"])
      byResult[result] = (byResult[result] ?? 0) + 1
      let outcome: Outcome
      try {
        outcome = await runCase(group, test)
      } catch (e) {
        outcome = fail(`threw ${e instanceof Error ? e.name : String(e)}`)
      }
      if (outcome.kind === "pass") passed++
      else if (outcome.kind === "unsupported") unsupported.push(label(group, test))
      else failures.push(`${String(test["tcId"])}: ${outcome.why}`)
    }
  }
  return { total, passed, byResult, failures, unsupported }
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle

const aesGcmCase = async (group: Record<string, unknown>, t: Record<string, unknown>): Promise<Outcome> => {
  const tagLength = Number(group["tagSize"])
  const iv = hex(t, "iv")
  const aad = hex(t, "aad")
  const msg = hex(t, "msg")
  const sealed = new Uint8Array([...hex(t, "ct"), ...hex(t, "tag")])
  let key: CryptoKey
  try {
    key = await subtle().importKey("raw", bufferSource(hex(t, "key")), "AES-GCM", false, ["encrypt", "decrypt"])
  } catch {
    return t["result"] === "valid" ? { kind: "unsupported" } : pass
  }
  const params = { name: "AES-GCM", iv: bufferSource(iv), additionalData: bufferSource(aad), tagLength }
  let opened: Uint8Array | undefined
  try {
    opened = new Uint8Array(await subtle().decrypt(params, key, bufferSource(sealed)))
  } catch {
    opened = undefined
  }
  if (t["result"] === "valid" && opened === undefined) {
    // Refused: either this engine does not take the IV size (then encryption is refused as well) or it is a bug.
    const encrypts = await subtle().encrypt(params, key, bufferSource(msg)).then(() => true, () => false)
    return encrypts ? fail("valid ciphertext rejected") : { kind: "unsupported" }
  }
  if (opened === undefined) return judge(t["result"], false)
  if (!equalBytes(opened, msg)) return fail("wrong plaintext")
  const resealed = new Uint8Array(await subtle().encrypt(params, key, bufferSource(msg)))
  if (!equalBytes(resealed, sealed)) return fail("encryption differs")
  return judge(t["result"], true)
}

const hkdfCase = async (_group: Record<string, unknown>, t: Record<string, unknown>): Promise<Outcome> => {
  let okm: Uint8Array | undefined
  try {
    okm = await hkdf("SHA-256", hex(t, "ikm"), hex(t, "salt"), hex(t, "info"), Number(t["size"]))
  } catch {
    okm = undefined
  }
  if (okm === undefined && t["result"] === "valid" && hex(t, "ikm").length === 0) return { kind: "unsupported" }
  return judge(t["result"], okm !== undefined && equalBytes(okm, hex(t, "okm")))
}

const hmacCase = async (group: Record<string, unknown>, t: Record<string, unknown>): Promise<Outcome> => {
  const tagBytes = Number(group["tagSize"]) / 8
  const full = await hmac(await importHmacKey("SHA-256", hex(t, "key")), hex(t, "msg"))
  return judge(t["result"], equalBytes(full.subarray(0, tagBytes), hex(t, "tag")))
}

const rsaPssCase = async (group: Record<string, unknown>, t: Record<string, unknown>): Promise<Outcome> => {
  const spki = fromHex(String(group["publicKeyDer"]))
  return judge(t["result"], await verifyIdentitySignature(spki, hex(t, "sig"), hex(t, "msg")))
}

const sizes = (group: Record<string, unknown>, t: Record<string, unknown>): string =>
  `${String(t["tcId"])}:${String(group["keySize"])}/${String(group["ivSize"] ?? "-")}`

export interface WycheproofTexts {
  readonly aesGcm: string
  readonly hkdf: string
  readonly hmac: string
  readonly rsaPss: string
}

export interface WycheproofReports {
  readonly aesGcm: SuiteReport
  readonly hkdf: SuiteReport
  readonly hmac: SuiteReport
  readonly rsaPss: SuiteReport
}

export const runWycheproof = async (texts: WycheproofTexts): Promise<WycheproofReports> => ({
  aesGcm: await runFile(texts.aesGcm, aesGcmCase, sizes),
  hkdf: await runFile(texts.hkdf, hkdfCase, sizes),
  hmac: await runFile(texts.hmac, hmacCase, sizes),
  rsaPss: await runFile(texts.rsaPss, rsaPssCase, sizes)
})
