/** HKDF, HMAC and hashing through WebCrypto, identical in Node and the browser. */
import { bufferSource } from "./bytes.js"

export type HashName = "SHA-256" | "SHA-512"

const subtle = (): SubtleCrypto => globalThis.crypto.subtle

export const hashLength = (hash: HashName): number => (hash === "SHA-256" ? 32 : 64)

/** HKDF (RFC 5869) extract-and-expand; an empty salt means HashLen zero bytes, as the RFC says. */
export const hkdf = async (
  hash: HashName,
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number
): Promise<Uint8Array> => {
  const key = await subtle().importKey("raw", bufferSource(ikm), "HKDF", false, ["deriveBits"])
  return hkdfWithKey(hash, key, salt, info, length)
}

/** HKDF with IKM already imported as an HKDF key, for several outputs from one secret. */
export const hkdfWithKey = async (
  hash: HashName,
  ikm: CryptoKey,
  salt: Uint8Array,
  info: Uint8Array,
  length: number
): Promise<Uint8Array> =>
  new Uint8Array(
    await subtle().deriveBits(
      { name: "HKDF", hash, salt: bufferSource(salt), info: bufferSource(info) },
      ikm,
      length * 8
    )
  )

export const importHkdfKey = (ikm: Uint8Array): Promise<CryptoKey> =>
  subtle().importKey("raw", bufferSource(ikm), "HKDF", false, ["deriveBits"])

export const importHmacKey = (hash: HashName, key: Uint8Array): Promise<CryptoKey> =>
  subtle().importKey("raw", bufferSource(key), { name: "HMAC", hash }, false, ["sign"])

export const hmac = async (key: CryptoKey, data: Uint8Array): Promise<Uint8Array> =>
  new Uint8Array(await subtle().sign("HMAC", key, bufferSource(data)))

export const digest = async (hash: HashName, data: Uint8Array): Promise<Uint8Array> =>
  new Uint8Array(await subtle().digest(hash, bufferSource(data)))
