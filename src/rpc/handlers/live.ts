/** Presence, calls and signalling: memory only, between a host and its own customers. */
import { Effect } from "effect"
import { Calls } from "../../actors/Calls.js"
import { Sessions } from "../../actors/Sessions.js"
import { InvalidRequest } from "../../domain/errors.js"
import { MAX_SIGNAL_BYTES } from "../../domain/liveEvents.js"
import { CurrentPrincipal, LiveRpcs } from "../contract.js"

export const LiveHandlersLive = LiveRpcs.toLayer(Effect.gen(function*() {
  const sessions = yield* Sessions
  const calls = yield* Calls
  return {
    "live.events": (_, { clientId }) => sessions.subscribe(clientId),
    "presence.set": ({ ready }, { clientId }) => sessions.setReady(clientId, ready),
    "call.invite": ({ peer }, { clientId }) =>
      Effect.flatMap(CurrentPrincipal, (caller) => calls.invite(clientId, caller, peer)).pipe(
        Effect.map((callId) => ({ callId }))
      ),
    "call.accept": ({ callId }, { clientId }) => calls.accept(clientId, callId),
    "call.decline": ({ callId, reason }, { clientId }) => calls.decline(clientId, callId, reason),
    "call.cancel": ({ callId }, { clientId }) => calls.cancel(clientId, callId),
    "call.hangUp": ({ callId }, { clientId }) => calls.hangUp(clientId, callId),
    "call.signal": ({ callId, payload }, { clientId }) =>
      payload.length === 0 || payload.length > MAX_SIGNAL_BYTES
        ? Effect.fail(new InvalidRequest({ reason: `a signalling payload is 1 to ${MAX_SIGNAL_BYTES} bytes` }))
        : calls.signal(clientId, callId, payload)
  }
}))
