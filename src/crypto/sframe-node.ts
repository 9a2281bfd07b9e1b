/**
 * SFrame AEADs on node:crypto for Node. WebCrypto in Node pays a thread-pool round trip per call and needs the
 * HMAC input in one buffer; OpenSSL's synchronous, streaming API needs neither, which roughly halves the cost of a
 * 720p frame. Same constructions as sframe-suites.ts (tests hold the two against each other); reached through
 * process.getBuiltinModule so browser bundles need no shims and simply use WebCrypto.
 */
import type { SFrameAead, SFrameCipherSuite } from "./sframe-suites.js"
import { equalBytes } from "./bytes.js"
import { FrameAuthenticationFailed, MalformedFrame } from "./errors.js"

type NodeCrypto = typeof import("node:crypto")

const loadNodeCrypto = (): NodeCrypto | undefined => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  const mod = proc?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined
  return mod && typeof mod.createCipheriv === "function" ? mod : undefined
}

/** A Uint8Array that owns its whole ArrayBuffer (Node may hand out views into a shared pool). */
const owned = (bytes: Uint8Array, prefix?: Uint8Array, suffix?: Uint8Array): Uint8Array => {
  const head = prefix?.length ?? 0
  const out = new Uint8Array(head + bytes.length + (suffix?.length ?? 0))
  if (prefix) out.set(prefix)
  out.set(bytes, head)
  if (suffix) out.set(suffix, head + bytes.length)
  return out
}

const plain = (bytes: Uint8Array): Uint8Array =>
  bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length
    ? new Uint8Array(bytes.buffer, 0, bytes.length)
    : owned(bytes)

const lengthsPrefix = (aadLength: number, ctLength: number, nt: number, nonce: Uint8Array): Uint8Array => {
  const prefix = new Uint8Array(36)
  const view = new DataView(prefix.buffer)
  view.setBigUint64(0, BigInt(aadLength))
  view.setBigUint64(8, BigInt(ctLength))
  view.setBigUint64(16, BigInt(nt))
  prefix.set(nonce, 24)
  return prefix
}

const ctrHmac = (nodeCrypto: NodeCrypto, suite: SFrameCipherSuite, key: Uint8Array): SFrameAead => {
  const cipherName = `aes-${suite.nka * 8}-ctr`
  const hashName = suite.hash === "SHA-256" ? "sha256" : "sha512"
  const encKey = nodeCrypto.createSecretKey(key.slice(0, suite.nka))
  const authKey = nodeCrypto.createSecretKey(key.slice(suite.nka))
  const nt = suite.nt
  const counterBlock = (nonce: Uint8Array) => {
    const block = new Uint8Array(16)
    block.set(nonce)
    return block
  }
  const tagOf = (nonce: Uint8Array, head: Uint8Array, tail: Uint8Array, ct: Uint8Array): Uint8Array => {
    const mac = nodeCrypto.createHmac(hashName, authKey)
    mac.update(lengthsPrefix(head.length + tail.length, ct.length, nt, nonce))
    mac.update(head)
    mac.update(tail)
    mac.update(ct)
    return mac.digest().subarray(0, nt)
  }
  return {
    suite,
    engine: "node-crypto",
    seal: async (nonce, head, tail, plaintext) => {
      const cipher = nodeCrypto.createCipheriv(cipherName, encKey, counterBlock(nonce))
      const ct = cipher.update(plaintext)
      return owned(ct, head, tagOf(nonce, head, tail, ct))
    },
    open: async (nonce, head, tail, sealed) => {
      if (sealed.length < nt) throw new MalformedFrame({ reason: "shorter than the tag" })
      const ct = sealed.subarray(0, sealed.length - nt)
      if (!equalBytes(tagOf(nonce, head, tail, ct), sealed.subarray(sealed.length - nt))) throw new FrameAuthenticationFailed()
      const decipher = nodeCrypto.createDecipheriv(cipherName, encKey, counterBlock(nonce))
      return plain(decipher.update(ct))
    }
  }
}

const gcm = (nodeCrypto: NodeCrypto, suite: SFrameCipherSuite, key: Uint8Array): SFrameAead => {
  const cipherName = `aes-${suite.nka * 8}-gcm` as "aes-256-gcm"
  const secret = nodeCrypto.createSecretKey(key.slice())
  const aad = (head: Uint8Array, tail: Uint8Array) => (tail.length === 0 ? head : owned(tail, head))
  return {
    suite,
    engine: "node-crypto",
    seal: async (nonce, head, tail, plaintext) => {
      const cipher = nodeCrypto.createCipheriv(cipherName, secret, nonce, { authTagLength: 16 })
      cipher.setAAD(aad(head, tail))
      const ct = cipher.update(plaintext)
      cipher.final()
      return owned(ct, head, cipher.getAuthTag())
    },
    open: async (nonce, head, tail, sealed) => {
      if (sealed.length < 16) throw new MalformedFrame({ reason: "shorter than the tag" })
      const decipher = nodeCrypto.createDecipheriv(cipherName, secret, nonce, { authTagLength: 16 })
      decipher.setAuthTag(sealed.subarray(sealed.length - 16))
      decipher.setAAD(aad(head, tail))
      const pt = decipher.update(sealed.subarray(0, sealed.length - 16))
      try {
        decipher.final()
      } catch {
        pt.fill(0)
        throw new FrameAuthenticationFailed()
      }
      return plain(pt)
    }
  }
}

let cached: NodeCrypto | null | undefined

/** The node:crypto AEAD for this suite and key, or undefined outside Node. */
export const nodeSFrameAead = (suite: SFrameCipherSuite, key: Uint8Array): SFrameAead | undefined => {
  if (cached === undefined) cached = loadNodeCrypto() ?? null
  if (!cached) return undefined
  return suite.construction === "aes-gcm" ? gcm(cached, suite, key) : ctrHmac(cached, suite, key)
}
