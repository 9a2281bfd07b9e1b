/**
 * Runs SFrame known-answer vectors in the layout of RFC 9605's test-vector file (`header`, `aes_ctr_hmac` and
 * `sframe` lists). Environment-free, so the same check runs in Node (the `tessera kat` command) and in a browser.
 */
import { equalBytes, fromHex, toHex } from "./bytes.js"
import { decodeSFrameHeader, encodeSFrameHeader } from "./sframe-header.js"
import { importSFrameAead, SFRAME_CIPHER_SUITES, type SFrameCipherSuiteId, type SFrameEngine } from "./sframe-suites.js"
import { deriveSFrameKeyMaterial, sframeLabels, sframeNonce, sframeSecret, SFrameKey } from "./sframe.js"

export interface KnownAnswerReport {
  readonly passed: number
  readonly failed: number
  /** One line per failed vector, naming the list, the index and what differed. */
  readonly failures: ReadonlyArray<string>
}

/**
 * JSON.parse turns 64-bit KID and CTR values into lossy doubles, so those two fields are quoted before parsing and
 * read as BigInt afterwards.
 */
export const parseVectorFile = (text: string): unknown =>
  JSON.parse(text.replace(/("(?:kid|ctr)"\s*:\s*)(\d+)/g, '$1"$2"'))

class VectorProblem extends Error {}

type Vector = Record<string, unknown>

const hexField = (v: Vector, name: string): Uint8Array => {
  const value = v[name]
  if (typeof value !== "string") throw new VectorProblem(`missing field ${name}`)
  try {
    return fromHex(value)
  } catch {
    throw new VectorProblem(`field ${name} is not hex`)
  }
}

const uintField = (v: Vector, name: string): bigint => {
  const value = v[name]
  if ((typeof value !== "string" || !/^\d+$/.test(value)) && typeof value !== "number")
    throw new VectorProblem(`missing field ${name}`)
  return BigInt(value)
}

const suiteField = (v: Vector): SFrameCipherSuiteId => {
  const value = v["cipher_suite"]
  if (typeof value !== "number" || !SFRAME_CIPHER_SUITES.has(value)) throw new VectorProblem("unknown cipher_suite")
  return value as SFrameCipherSuiteId
}

const expectEqual = (name: string, actual: Uint8Array, expected: Uint8Array): void => {
  if (!equalBytes(actual, expected)) throw new VectorProblem(`${name} mismatch (got ${toHex(actual)})`)
}

const rejects = async (p: Promise<unknown>): Promise<boolean> => p.then(() => false, () => true)

const flipLastBit = (bytes: Uint8Array): Uint8Array => {
  const out = bytes.slice()
  out[out.length - 1]! ^= 1
  return out
}

const checkHeader = async (v: Vector): Promise<void> => {
  const kid = uintField(v, "kid")
  const ctr = uintField(v, "ctr")
  const encoded = hexField(v, "encoded")
  expectEqual("encoded", encodeSFrameHeader(kid, ctr), encoded)
  const decoded = decodeSFrameHeader(encoded)
  if (decoded.kid !== kid || decoded.ctr !== ctr || decoded.length !== encoded.length)
    throw new VectorProblem("decoded header differs")
}

const checkAesCtrHmac = async (v: Vector, engine?: SFrameEngine): Promise<void> => {
  const suite = suiteField(v)
  const key = hexField(v, "key")
  const nka = SFRAME_CIPHER_SUITES.get(suite)!.nka
  expectEqual("enc_key", key.subarray(0, nka), hexField(v, "enc_key"))
  expectEqual("auth_key", key.subarray(nka), hexField(v, "auth_key"))
  const aead = await importSFrameAead(suite, key, engine)
  const nonce = hexField(v, "nonce")
  const aad = hexField(v, "aad")
  const ct = hexField(v, "ct")
  const empty = new Uint8Array(0)
  expectEqual("ct", await aead.seal(nonce, empty, aad, hexField(v, "pt")), ct)
  expectEqual("pt", await aead.open(nonce, empty, aad, ct), hexField(v, "pt"))
  if (!(await rejects(aead.open(nonce, empty, aad, flipLastBit(ct))))) throw new VectorProblem("forged tag accepted")
}

const checkSFrame = async (v: Vector, engine?: SFrameEngine): Promise<void> => {
  const suite = suiteField(v)
  const kid = uintField(v, "kid")
  const ctr = uintField(v, "ctr")
  const baseKey = hexField(v, "base_key")
  const labels = sframeLabels(suite, kid)
  expectEqual("sframe_key_label", labels.keyLabel, hexField(v, "sframe_key_label"))
  expectEqual("sframe_salt_label", labels.saltLabel, hexField(v, "sframe_salt_label"))
  expectEqual("sframe_secret", await sframeSecret(suite, baseKey), hexField(v, "sframe_secret"))
  const material = await deriveSFrameKeyMaterial(suite, kid, baseKey)
  expectEqual("sframe_key", material.key, hexField(v, "sframe_key"))
  expectEqual("sframe_salt", material.salt, hexField(v, "sframe_salt"))
  expectEqual("nonce", sframeNonce(material.salt, ctr), hexField(v, "nonce"))
  const metadata = hexField(v, "metadata")
  const header = encodeSFrameHeader(kid, ctr)
  const aad = hexField(v, "aad")
  expectEqual("aad", new Uint8Array([...header, ...metadata]), aad)
  const key = await SFrameKey.derive(suite, kid, baseKey, engine)
  const pt = hexField(v, "pt")
  const ct = hexField(v, "ct")
  expectEqual("ct", await key.encrypt(ctr, pt, metadata), ct)
  expectEqual("pt", await key.decrypt(ctr, ct, header.length, metadata), pt)
  if (!(await rejects(key.decrypt(ctr, flipLastBit(ct), header.length, metadata)))) throw new VectorProblem("forged tag accepted")
}

const lists = [
  ["header", checkHeader],
  ["aes_ctr_hmac", checkAesCtrHmac],
  ["sframe", checkSFrame]
] as const

/**
 * Runs every vector of the file; a file that is not such a vector file counts as one failure. `engine` forces the
 * AEAD implementation (default: node:crypto in Node, WebCrypto elsewhere).
 */
export const runSFrameKnownAnswers = async (text: string, engine?: SFrameEngine): Promise<KnownAnswerReport> => {
  let file: unknown
  try {
    file = parseVectorFile(text)
  } catch {
    return { passed: 0, failed: 1, failures: ["file: not JSON"] }
  }
  if (typeof file !== "object" || file === null || !lists.some(([name]) => Array.isArray((file as Vector)[name])))
    return { passed: 0, failed: 1, failures: ["file: none of the lists header, aes_ctr_hmac, sframe"] }
  let passed = 0
  const failures: Array<string> = []
  for (const [name, check] of lists) {
    const vectors = (file as Vector)[name]
    if (vectors === undefined) continue
    if (!Array.isArray(vectors)) {
      failures.push(`${name}: not a list`)
      continue
    }
    for (const [index, v] of vectors.entries()) {
      const where = `${name}[${index}]` + (typeof v?.cipher_suite === "number" ? ` suite 0x${v.cipher_suite.toString(16).padStart(4, "0")}` : "")
      try {
        if (typeof v !== "object" || v === null) throw new VectorProblem("not an object")
        await check(v as Vector, engine)
        passed++
      } catch (e) {
        failures.push(`${where}: ${e instanceof VectorProblem ? e.message : `error ${e instanceof Error ? e.message : String(e)}`}`)
      }
    }
  }
  return { passed, failed: failures.length, failures }
}
