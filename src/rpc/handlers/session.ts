/** Connecting: a fresh challenge per connection, answered by a signature of the device key named in the config. */
import { Effect, Option } from "effect"
import { ConfigFiles } from "../../actors/ConfigFiles.js"
import { devicePublicKeyBytes } from "../../actors/deviceKeys.js"
import { Sessions } from "../../actors/Sessions.js"
import { utf8Bytes } from "../../crypto/bytes.js"
import { verifyIdentitySignature } from "../../crypto/identity.js"
import { authenticationMessage } from "../../domain/config.js"
import { ChallengeInvalid, SignatureInvalid } from "../../domain/errors.js"
import { SessionRpcs } from "../contract.js"

export const SessionHandlersLive = SessionRpcs.toLayer(Effect.gen(function*() {
  const sessions = yield* Sessions
  const configs = yield* ConfigFiles
  return {
    "session.challenge": (_, { clientId }) => Effect.map(sessions.issueChallenge(clientId), (nonce) => ({ nonce })),
    "session.authenticate": ({ config, signature }, { clientId }) =>
      Effect.gen(function*() {
        // Taken before anything else: whatever happens next, this nonce cannot be answered a second time.
        const nonce = yield* sessions.takeChallenge(clientId)
        if (Option.isNone(nonce)) return yield* new ChallengeInvalid()
        if (Option.isSome(yield* sessions.principal(clientId))) return yield* new ChallengeInvalid()
        const principal = yield* configs.resolve(config)
        const valid = yield* Effect.promise(() =>
          verifyIdentitySignature(
            devicePublicKeyBytes(principal.devicePublicKey),
            signature,
            utf8Bytes(authenticationMessage(nonce.value, principal.fingerprint))
          )
        )
        if (!valid) return yield* new SignatureInvalid()
        yield* sessions.authenticate(clientId, principal)
        return { kind: principal.kind }
      })
  }
}))
