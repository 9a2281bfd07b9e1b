/**
 * Keys the server derives from its master key: the keyed hash that stands in for codes and identifiers in the
 * database, and the Ed25519 key that signs config files. Nothing here is ever stored.
 */
import { createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { MasterKey } from "../eventstore/MasterKey.js"

/** PKCS#8 prefix of a raw 32-byte Ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")

export class ServerKeys extends Context.Tag("tessera/ServerKeys")<ServerKeys, {
  /** HMAC-SHA-256 of a value under the index key, separated by kind; hex. Codes and identifiers are stored as this. */
  readonly keyedHash: (kind: string, value: string) => string
  readonly signConfig: (canonical: string) => string
  readonly verifyConfig: (canonical: string, signature: string) => boolean
  /** The config-signing public key (SPKI, base64url) so that clients can check their config offline. */
  readonly configSigningPublicKey: string
}>() {}

export const ServerKeysLive = Layer.effect(
  ServerKeys,
  Effect.gen(function*() {
    const master = yield* MasterKey
    const indexKey = Buffer.from(master.derive("tessera/lookup-index"))
    const seed = Buffer.from(master.derive("tessera/config-signing"))
    const privateKey: KeyObject = createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
      format: "der",
      type: "pkcs8"
    })
    const publicKey = createPublicKey(privateKey)
    return {
      keyedHash: (kind, value) => createHmac("sha256", indexKey).update(kind).update("\0").update(value).digest("hex"),
      signConfig: (canonical) => sign(null, Buffer.from(canonical), privateKey).toString("base64url"),
      verifyConfig: (canonical, signature) => {
        try {
          return verify(null, Buffer.from(canonical), publicKey, Buffer.from(signature, "base64url"))
        } catch {
          return false
        }
      },
      configSigningPublicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64url")
    }
  })
)
