/**
 * Customer profiles (name, customer number, notes) are sealed on the host's device with AES-256-GCM under the
 * host's profile key before they reach the server; the server stores and returns only the ciphertext.
 */
import { bufferSource, concatBytes, fromBase64Url, toBase64Url, utf8Bytes } from "../crypto/bytes.js"

export interface CustomerProfile {
  readonly name: string
  readonly customerNumber?: string
  readonly note?: string
}

const AAD = utf8Bytes("tessera/customer-profile/v1")
const IV_BYTES = 12

export const newProfileKey = (): Uint8Array => crypto.getRandomValues(new Uint8Array(32))

const importKey = (key: Uint8Array, usage: KeyUsage) =>
  crypto.subtle.importKey("raw", bufferSource(key), "AES-GCM", false, [usage])

export const sealProfile = async (profileKey: Uint8Array, profile: CustomerProfile): Promise<string> => {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES))
  const key = await importKey(profileKey, "encrypt")
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: bufferSource(AAD) },
    key,
    bufferSource(utf8Bytes(JSON.stringify(profile)))
  )
  return toBase64Url(concatBytes(iv, new Uint8Array(sealed)))
}

/** Fails (rejects) when the ciphertext was not made with this key or was altered. */
export const openProfile = async (profileKey: Uint8Array, sealed: string): Promise<CustomerProfile> => {
  const bytes = fromBase64Url(sealed)
  const key = await importKey(profileKey, "decrypt")
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bufferSource(bytes.subarray(0, IV_BYTES)), additionalData: bufferSource(AAD) },
    key,
    bufferSource(bytes.subarray(IV_BYTES))
  )
  return JSON.parse(new TextDecoder().decode(plain)) as CustomerProfile
}
