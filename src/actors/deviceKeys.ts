/** Checks a device's identity public key before it is bound to an account. */
import { Effect } from "effect"
import { fromBase64Url, toBase64Url } from "../crypto/bytes.js"
import { identityFingerprint, importIdentityPublicKey } from "../crypto/identity.js"
import { InvalidRequest } from "../domain/errors.js"

/** The SPKI must be an RSA-PSS-capable 4096-bit key; returns it re-encoded and its fingerprint. */
export const checkDevicePublicKey = (spki: Uint8Array) =>
  Effect.tryPromise({
    try: async () => {
      await importIdentityPublicKey(spki)
      return { publicKey: toBase64Url(spki), fingerprint: await identityFingerprint(spki) }
    },
    catch: () => new InvalidRequest({ reason: "the device key must be an RSA 4096 public key (SPKI)" })
  })

export const devicePublicKeyBytes = (publicKey: string): Uint8Array => fromBase64Url(publicKey)
