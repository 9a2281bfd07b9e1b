/** MediaKeys from a bare CallSession (src/crypto), for code that runs the handshake itself rather than secureCall. */
import { Effect } from "effect"
import { KeysDestroyed } from "../../crypto/errors.js"
import type { CallSession } from "../../crypto/session.js"
import type { MediaKeys } from "./CallMedia.js"

const keysDestroyedOrDie = <A>(run: () => Promise<A>): Effect.Effect<A, KeysDestroyed> =>
  Effect.tryPromise({ try: run, catch: (e) => e }).pipe(
    Effect.catchAll((e) => (e instanceof KeysDestroyed ? Effect.fail(e) : Effect.die(e)))
  )

export const mediaKeysOf = (session: CallSession): MediaKeys => ({
  suite: session.sframeSuite,
  createSender: keysDestroyedOrDie(() => session.createSFrameSender()),
  createReceiver: (options) => keysDestroyedOrDie(() => session.createSFrameReceiver(options))
})
