/**
 * SFrame cipher suites and their AEADs through WebCrypto. 0x0001-0x0005 are RFC 9605's registry. 0x0006-0x0008 are
 * tessera's AES-256 counterparts of 0x0001-0x0003: the same AES-CTR + HMAC construction (RFC 9605, 4.5.1) with
 * AES-256 and HMAC-SHA-512, a 96-byte key (32 bytes AES, then 64 bytes HMAC) and HKDF-SHA-512 for key derivation.
 */
import { bufferSource, equalBytes } from "./bytes.js"
import { FrameAuthenticationFailed, MalformedFrame } from "./errors.js"
import type { HashName } from "./kdf.js"
import { nodeSFrameAead } from "./sframe-node.js"

export type SFrameCipherSuiteId = 0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x0005 | 0x0006 | 0x0007 | 0x0008

export interface SFrameCipherSuite {
  readonly id: SFrameCipherSuiteId
  readonly name: string
  readonly construction: "aes-ctr-hmac" | "aes-gcm"
  /** Hash of the key derivation (and of the HMAC for the CTR suites). */
  readonly hash: HashName
  /** AEAD key size in bytes (for the CTR suites: AES key followed by the HMAC key). */
  readonly nk: number
  /** Nonce size in bytes. */
  readonly nn: number
  /** Tag size in bytes. */
  readonly nt: number
  /** AES key size in bytes. */
  readonly nka: number
}

const ctrHmac = (id: SFrameCipherSuiteId, name: string, hash: HashName, nka: number, nt: number): SFrameCipherSuite => ({
  id,
  name,
  construction: "aes-ctr-hmac",
  hash,
  nk: nka + (hash === "SHA-256" ? 32 : 64),
  nn: 12,
  nt,
  nka
})

const gcm = (id: SFrameCipherSuiteId, name: string, hash: HashName, nka: number): SFrameCipherSuite => ({
  id,
  name,
  construction: "aes-gcm",
  hash,
  nk: nka,
  nn: 12,
  nt: 16,
  nka
})

export const SFRAME_CIPHER_SUITES: ReadonlyMap<number, SFrameCipherSuite> = new Map(
  [
    ctrHmac(0x0001, "AES_128_CTR_HMAC_SHA256_80", "SHA-256", 16, 10),
    ctrHmac(0x0002, "AES_128_CTR_HMAC_SHA256_64", "SHA-256", 16, 8),
    ctrHmac(0x0003, "AES_128_CTR_HMAC_SHA256_32", "SHA-256", 16, 4),
    gcm(0x0004, "AES_128_GCM_SHA256_128", "SHA-256", 16),
    gcm(0x0005, "AES_256_GCM_SHA512_128", "SHA-512", 32),
    ctrHmac(0x0006, "AES_256_CTR_HMAC_SHA512_80", "SHA-512", 32, 10),
    ctrHmac(0x0007, "AES_256_CTR_HMAC_SHA512_64", "SHA-512", 32, 8),
    ctrHmac(0x0008, "AES_256_CTR_HMAC_SHA512_32", "SHA-512", 32, 4)
  ].map((s) => [s.id, s])
)

/** The product default: AES-256 in counter mode, authenticated with an 80-bit HMAC-SHA-512 tag. */
export const DEFAULT_SFRAME_SUITE: SFrameCipherSuiteId = 0x0006

export const sframeCipherSuite = (id: number): SFrameCipherSuite => {
  const suite = SFRAME_CIPHER_SUITES.get(id)
  if (!suite) throw new RangeError(`unknown SFrame cipher suite ${id}`)
  return suite
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle

const writeU64 = (out: Uint8Array, offset: number, value: number): void => {
  const hi = Math.floor(value / 0x1_0000_0000)
  const view = new DataView(out.buffer, out.byteOffset + offset, 8)
  view.setUint32(0, hi)
  view.setUint32(4, value >>> 0)
}

/**
 * An AEAD keyed once, with its CryptoKeys imported once and reused for every frame. The AAD comes in two parts so a
 * frame is sealed straight into header || ciphertext || tag: `head` (the SFrame header) is echoed at the front of
 * the output, `tail` (application metadata) is authenticated but not carried. Outputs own their whole ArrayBuffer,
 * so `out.buffer` can be handed to an encoded-frame transform as is.
 */
export interface SFrameAead {
  readonly suite: SFrameCipherSuite
  readonly engine: SFrameEngine
  readonly seal: (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, plaintext: Uint8Array) => Promise<Uint8Array>
  /** Opens ciphertext || tag; rejects with FrameAuthenticationFailed. */
  readonly open: (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, sealed: Uint8Array) => Promise<Uint8Array>
}

const importCtrHmac = async (suite: SFrameCipherSuite, key: Uint8Array): Promise<SFrameAead> => {
  const encKey = await subtle().importKey("raw", bufferSource(key.slice(0, suite.nka)), "AES-CTR", false, ["encrypt", "decrypt"])
  const authKey = await subtle().importKey(
    "raw",
    bufferSource(key.slice(suite.nka)),
    { name: "HMAC", hash: suite.hash },
    false,
    ["sign"]
  )
  const nt = suite.nt
  const counterBlock = (nonce: Uint8Array): Uint8Array<ArrayBuffer> => {
    const block = new Uint8Array(16)
    block.set(nonce)
    return block
  }
  const aesCtr = async (op: "encrypt" | "decrypt", nonce: Uint8Array, data: Uint8Array): Promise<Uint8Array> =>
    new Uint8Array(await subtle()[op]({ name: "AES-CTR", counter: counterBlock(nonce), length: 32 }, encKey, bufferSource(data)))
  // auth_data = len(aad) || len(ct) || Nt (8 bytes each) || nonce || aad || ct
  const authBuffer = (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, ct: Uint8Array) => {
    const buf = new Uint8Array(36 + head.length + tail.length + ct.length)
    writeU64(buf, 0, head.length + tail.length)
    writeU64(buf, 8, ct.length)
    writeU64(buf, 16, nt)
    buf.set(nonce, 24)
    buf.set(head, 36)
    buf.set(tail, 36 + head.length)
    buf.set(ct, 36 + head.length + tail.length)
    return buf
  }
  const mac = async (authData: Uint8Array): Promise<Uint8Array> =>
    new Uint8Array(await subtle().sign("HMAC", authKey, bufferSource(authData)))

  const seal = async (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, plaintext: Uint8Array) => {
    const ct = await aesCtr("encrypt", nonce, plaintext)
    const tag = await mac(authBuffer(nonce, head, tail, ct))
    const out = new Uint8Array(head.length + ct.length + nt)
    out.set(head)
    out.set(ct, head.length)
    out.set(tag.subarray(0, nt), head.length + ct.length)
    return out
  }

  const open = async (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, sealed: Uint8Array) => {
    if (sealed.length < nt) throw new MalformedFrame({ reason: "shorter than the tag" })
    const ct = sealed.subarray(0, sealed.length - nt)
    const tag = sealed.subarray(sealed.length - nt)
    // Decrypting while the tag is computed is safe: the plaintext is released only after the tag matched.
    const [expected, plaintext] = await Promise.all([mac(authBuffer(nonce, head, tail, ct)), aesCtr("decrypt", nonce, ct)])
    if (!equalBytes(expected.subarray(0, nt), tag)) {
      plaintext.fill(0)
      throw new FrameAuthenticationFailed()
    }
    return plaintext
  }
  return { suite, engine: "webcrypto", seal, open }
}

const importGcm = async (suite: SFrameCipherSuite, key: Uint8Array): Promise<SFrameAead> => {
  const aesKey = await subtle().importKey("raw", bufferSource(key), "AES-GCM", false, ["encrypt", "decrypt"])
  const aad = (head: Uint8Array, tail: Uint8Array): Uint8Array<ArrayBuffer> => {
    if (tail.length === 0) return bufferSource(head)
    const out = new Uint8Array(head.length + tail.length)
    out.set(head)
    out.set(tail, head.length)
    return out
  }
  const seal = async (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, plaintext: Uint8Array) => {
    const sealed = new Uint8Array(
      await subtle().encrypt(
        { name: "AES-GCM", iv: bufferSource(nonce), additionalData: aad(head, tail), tagLength: 128 },
        aesKey,
        bufferSource(plaintext)
      )
    )
    const out = new Uint8Array(head.length + sealed.length)
    out.set(head)
    out.set(sealed, head.length)
    return out
  }
  const open = async (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, sealed: Uint8Array) => {
    if (sealed.length < suite.nt) throw new MalformedFrame({ reason: "shorter than the tag" })
    try {
      return new Uint8Array(
        await subtle().decrypt(
          { name: "AES-GCM", iv: bufferSource(nonce), additionalData: aad(head, tail), tagLength: 128 },
          aesKey,
          bufferSource(sealed)
        )
      )
    } catch {
      throw new FrameAuthenticationFailed()
    }
  }
  return { suite, engine: "webcrypto", seal, open }
}

export type SFrameEngine = "webcrypto" | "node-crypto"

/**
 * Imports an AEAD key of exactly suite.nk bytes. By default node:crypto where it exists (faster, see
 * sframe-node.ts) and WebCrypto everywhere else; `engine` forces one, so tests can compare them.
 */
export const importSFrameAead = async (suiteId: number, key: Uint8Array, engine?: SFrameEngine): Promise<SFrameAead> => {
  const suite = sframeCipherSuite(suiteId)
  if (key.length !== suite.nk) throw new RangeError(`suite ${suiteId} needs a ${suite.nk}-byte key`)
  if (engine !== "webcrypto") {
    const fast = nodeSFrameAead(suite, key)
    if (fast) return fast
    if (engine === "node-crypto") throw new RangeError("node:crypto is not available here")
  }
  return suite.construction === "aes-gcm" ? importGcm(suite, key) : importCtrHmac(suite, key)
}
