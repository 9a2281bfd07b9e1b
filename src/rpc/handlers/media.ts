/** The media relay of accepted calls: joining a call's room, transports, producers and consumers. */
import { Effect } from "effect"
import { Calls } from "../../actors/Calls.js"
import { admitToCallRelay } from "../../media/CallRelay.js"
import { Rooms } from "../../media/Rooms.js"
import { MediaRpcs } from "../contract.js"

export const MediaHandlersLive = MediaRpcs.toLayer(Effect.gen(function*() {
  const calls = yield* Calls
  const rooms = yield* Rooms
  return {
    "relay.join": ({ callId }, { clientId }) => rooms.join(callId, clientId, admitToCallRelay(calls, clientId, callId)),
    "relay.connectTransport": ({ callId, direction, dtlsParameters }, { clientId }) =>
      rooms.connectTransport(callId, clientId, direction, dtlsParameters),
    "relay.restartIce": ({ callId, direction }, { clientId }) =>
      Effect.map(rooms.restartIce(callId, clientId, direction), (iceParameters) => ({ iceParameters })),
    "relay.produce": ({ callId, kind, rtpParameters }, { clientId }) =>
      Effect.map(rooms.produce(callId, clientId, kind, rtpParameters), (producerId) => ({ producerId })),
    "relay.consume": ({ callId, producerId, rtpCapabilities }, { clientId }) =>
      rooms.consume(callId, clientId, producerId, rtpCapabilities),
    "relay.resumeConsumer": ({ callId, consumerId }, { clientId }) => rooms.resumeConsumer(callId, clientId, consumerId),
    "relay.leave": ({ callId }, { clientId }) => rooms.leave(callId, clientId)
  }
}))
