/**
 * How the live side of the server follows what happens to accounts and connections:
 * - a customer activated: the host's devices are told at once;
 * - a customer's access ended (revoked or deleted): its calls end, its devices get AccessRevoked and their
 *   connections are closed with CLOSE_ACCESS_REVOKED; the next connect is refused with ConfigRevoked;
 * - a connection closed: its session and its calls go.
 */
import { Duration, Effect, Layer, Queue } from "effect"
import { AccountActors } from "../actors/AccountActors.js"
import { Calls } from "../actors/Calls.js"
import { CLOSE_ACCESS_REVOKED, ConnectionControl, Sessions } from "../actors/Sessions.js"
import { AccessRevoked, CustomerActivatedNotice } from "../domain/liveEvents.js"
import { UwsServer } from "../rpc/UwsServer.js"

/** Time for the AccessRevoked event to leave before the connection closes. */
const REVOKE_FLUSH = Duration.millis(150)

export const LiveReactionsLive = Layer.scopedDiscard(Effect.gen(function*() {
  const actors = yield* AccountActors
  const sessions = yield* Sessions
  const calls = yield* Calls
  const control = yield* ConnectionControl
  const server = yield* UwsServer

  const changes = yield* actors.changes.subscribe
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(changes), (change) => {
    if (change._tag === "CustomerActivated") {
      return Effect.asVoid(sessions.deliverToAccount(change.hostId, new CustomerActivatedNotice({ customerId: change.customerId })))
    }
    return Effect.gen(function*() {
      yield* calls.endAllOf(change.customerId, "access-revoked")
      const clients = yield* sessions.clientsOf(change.customerId)
      yield* Effect.forEach(clients, (id) => sessions.deliverToClient(id, new AccessRevoked()), { discard: true })
      // Revoked at once, so no RPC of theirs is served in between; the close follows once the event has left.
      yield* Effect.forEach(clients, (id) => sessions.revoke(id), { discard: true })
      yield* Effect.forkDaemon(Effect.delay(
        Effect.forEach(clients, (id) => control.close(id, CLOSE_ACCESS_REVOKED, "access revoked"), { discard: true }),
        REVOKE_FLUSH
      ))
    })
  })))

  const disconnects = yield* server.subscribeDisconnects
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(disconnects), (clientId) =>
    Effect.zipRight(calls.dropClient(clientId), sessions.remove(clientId)))))
}))
