/** The Effect face of the call crypto: expected failures arrive typed in the error channel. */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { utf8Bytes } from "../../src/crypto/bytes.js"
import * as CallCrypto from "../../src/crypto/effect.js"
import type { HandshakeParty } from "../../src/crypto/handshake.js"
import { generateIdentityKeyPair, type IdentityKeyPair } from "../../src/crypto/identity.js"
import type { CallSession } from "../../src/crypto/session.js"

let alice: IdentityKeyPair
let bob: IdentityKeyPair
beforeAll(async () => {
  ;[alice, bob] = await Promise.all([generateIdentityKeyPair(), generateIdentityKeyPair()])
})

const parties = (): [HandshakeParty, HandshakeParty] => [
  { callId: "fx", selfId: "a", selfIdentity: alice, peerId: "b", peerPublicKeySpki: bob.publicKeySpki },
  { callId: "fx", selfId: "b", selfIdentity: bob, peerId: "a", peerPublicKeySpki: alice.publicKeySpki }
]

describe("CallCrypto (Effect)", () => {
  it.live("runs a handshake, seals and opens, and destroys the sessions when the scope closes", () =>
    Effect.gen(function* () {
      const [caller, callee] = parties()
      let kept: ReadonlyArray<CallSession> = []
      yield* Effect.scoped(
        Effect.gen(function* () {
          const { offer, state } = yield* CallCrypto.startCallerHandshake(caller)
          const reply = yield* CallCrypto.respondToOffer({ ...callee, offer })
          const { confirm, session } = yield* CallCrypto.receiveAnswer(state, reply.answer)
          const a = yield* CallCrypto.scopedSession(Effect.succeed(session))
          const b = yield* CallCrypto.scopedSession(CallCrypto.receiveConfirm(reply.state, confirm))
          const record = yield* CallCrypto.sealSignalling(a, utf8Bytes("candidate"))
          expect(new TextDecoder().decode(yield* CallCrypto.openSignalling(b, record))).toBe("candidate")
          const replay = yield* Effect.flip(CallCrypto.openSignalling(b, record))
          expect(replay._tag).toBe("SignallingOutOfOrder")
          const tx = yield* Effect.promise(() => a.createSFrameSender())
          const rx = yield* Effect.promise(() => b.createSFrameReceiver())
          const frame = yield* CallCrypto.encryptFrame(tx, utf8Bytes("frame"))
          expect(yield* CallCrypto.decryptFrame(rx, frame)).toEqual(utf8Bytes("frame"))
          expect((yield* Effect.flip(CallCrypto.decryptFrame(rx, frame)))._tag).toBe("ReplayedFrame")
          kept = [a, b]
        })
      )
      expect(kept.map((s) => s.destroyed)).toEqual([true, true])
      expect((yield* Effect.flip(CallCrypto.sealSignalling(kept[0]!, utf8Bytes("late"))))._tag).toBe("KeysDestroyed")
    })
  )

  it.live("a substituted key is a typed BadSignature failure, not a defect", () =>
    Effect.gen(function* () {
      const [caller, callee] = parties()
      const { offer, state } = yield* CallCrypto.startCallerHandshake(caller)
      const reply = yield* CallCrypto.respondToOffer({ ...callee, selfIdentity: { ...alice, publicKeySpki: bob.publicKeySpki }, offer })
      const error = yield* Effect.flip(CallCrypto.receiveAnswer(state, reply.answer))
      expect(error._tag).toBe("BadSignature")
      const malformed = yield* Effect.flip(CallCrypto.respondToOffer({ ...callee, offer: Uint8Array.of(1, 1) }))
      expect(malformed._tag).toBe("MalformedMessage")
    })
  )
})
