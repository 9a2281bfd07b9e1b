/**
 * Presence, calls and signalling: memory only, between a host and its own customers.
 *
 * The handlers keep an empty context instead of every service in scope when they were built (they captured what
 * they use then). RpcServer copies a handler's context into each request fiber, and a live.events subscription
 * holds its fiber, with several copies of that context on its stack, for the life of the connection.
 */
import { Context, Effect, Layer } from "effect"
import { Calls } from "../../actors/Calls.js"
import { Sessions } from "../../actors/Sessions.js"
import { InvalidRequest } from "../../domain/errors.js"
import { MAX_SIGNAL_BYTES } from "../../domain/liveEvents.js"
import { CurrentPrincipal, LiveRpcs } from "../contract.js"

const handlers = Effect.gen(function*() {
  const sessions = yield* Sessions
  const calls = yield* Calls
  return LiveRpcs.of({
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
  })
})

export const LiveHandlersLive = Layer.scopedContext(Effect.flatMap(handlers, (built) =>
  Effect.mapInputContext(LiveRpcs.toHandlersContext(built), (_: Context.Context<never>) => Context.empty())))
