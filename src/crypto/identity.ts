/**
 * Device identity keys: RSA-PSS 4096 with SHA-256 and a 32-byte salt, through WebCrypto so the same code runs in
 * Node 20 and in the browser. The suite is named so that another one can be added without touching callers.
 */
import { bufferSource, toHex } from "./bytes.js"

export const IDENTITY_SUITE = "RSA-PSS-4096-SHA256" as const
export type IdentitySuite = typeof IDENTITY_SUITE

const algorithm = { name: "RSA-PSS", hash: "SHA-256" } as const
const SALT_LENGTH = 32

export interface IdentityKeyPair {
  readonly suite: IdentitySuite
  readonly publicKey: CryptoKey
  readonly privateKey: CryptoKey
  /** DER SubjectPublicKeyInfo of the public key: what travels and what fingerprints are made of. */
  readonly publicKeySpki: Uint8Array
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle

/** A fresh identity key pair. In the browser pass `extractable: false` so the private key can never leave. */
export const generateIdentityKeyPair = async (options?: { readonly extractable?: boolean }): Promise<IdentityKeyPair> => {
  const pair = await subtle().generateKey(
    { ...algorithm, modulusLength: 4096, publicExponent: new Uint8Array([1, 0, 1]) },
    options?.extractable ?? false,
    ["sign", "verify"]
  )
  const spki = new Uint8Array(await subtle().exportKey("spki", pair.publicKey))
  return { suite: IDENTITY_SUITE, publicKey: pair.publicKey, privateKey: pair.privateKey, publicKeySpki: spki }
}

/** Restores a key pair from its PKCS#8 private key and SPKI public key (the Node key file keeps both). */
export const importIdentityKeyPair = async (
  pkcs8: Uint8Array,
  spki: Uint8Array,
  options?: { readonly extractable?: boolean }
): Promise<IdentityKeyPair> => {
  const privateKey = await subtle().importKey("pkcs8", bufferSource(pkcs8), algorithm, options?.extractable ?? false, ["sign"])
  const publicKey = await importIdentityPublicKey(spki)
  return { suite: IDENTITY_SUITE, publicKey, privateKey, publicKeySpki: spki }
}

export const exportIdentityPrivateKey = async (pair: IdentityKeyPair): Promise<Uint8Array> =>
  new Uint8Array(await subtle().exportKey("pkcs8", pair.privateKey))

/** Imports a peer's public key; rejects anything that is not an RSA key of exactly 4096 bits. */
export const importIdentityPublicKey = async (spki: Uint8Array): Promise<CryptoKey> => {
  const key = await subtle().importKey("spki", bufferSource(spki), algorithm, true, ["verify"])
  const modulusLength = (key.algorithm as RsaHashedKeyAlgorithm).modulusLength
  if (modulusLength !== 4096) throw new Error("identity key must be RSA 4096")
  return key
}

export const signWithIdentity = async (privateKey: CryptoKey, data: Uint8Array): Promise<Uint8Array> =>
  new Uint8Array(await subtle().sign({ name: "RSA-PSS", saltLength: SALT_LENGTH }, privateKey, bufferSource(data)))

/** True only for a valid signature by that key; malformed keys or signatures give false, never a throw. */
export const verifyIdentitySignature = async (
  publicKey: CryptoKey | Uint8Array,
  signature: Uint8Array,
  data: Uint8Array
): Promise<boolean> => {
  try {
    const key = publicKey instanceof Uint8Array ? await importIdentityPublicKey(publicKey) : publicKey
    return await subtle().verify({ name: "RSA-PSS", saltLength: SALT_LENGTH }, key, bufferSource(signature), bufferSource(data))
  } catch {
    return false
  }
}

/** SHA-256 of the SPKI, lower-case hex: the device key fingerprint carried in config files. */
export const identityFingerprint = async (spki: Uint8Array): Promise<string> => {
  const digest = new Uint8Array(await subtle().digest("SHA-256", bufferSource(spki)))
  return toHex(digest)
}
