/**
 * Plain HTTP: `GET /healthz` for load balancers and `GET /metrics` (Prometheus text) with aggregate counts only,
 * never an identifier or an address.
 */
import { Effect, Layer } from "effect"
import { AccountActors } from "../actors/AccountActors.js"
import { Sessions } from "../actors/Sessions.js"
import { WorkerPool } from "../media/WorkerPool.js"
import { UwsServer } from "../rpc/UwsServer.js"

export const HttpRoutesLive = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* UwsServer
  const sessions = yield* Sessions
  const actors = yield* AccountActors
  const pool = yield* WorkerPool

  yield* server.addRoute("get", "/healthz", () =>
    Effect.succeed({ status: 200, headers: { "content-type": "application/json" }, body: "{\"status\":\"ok\"}" }))

  yield* server.addRoute("get", "/metrics", () =>
    Effect.gen(function*() {
      const counts = yield* sessions.counts
      const workers = yield* pool.workers
      const lines = [
        "# TYPE tessera_connections gauge",
        `tessera_connections ${yield* server.connectionCount}`,
        "# TYPE tessera_sessions_authenticated gauge",
        `tessera_sessions_authenticated ${counts.authenticated}`,
        "# TYPE tessera_actors_active gauge",
        `tessera_actors_active{kind="host"} ${yield* actors.hosts.activeCount}`,
        `tessera_actors_active{kind="customer"} ${yield* actors.customers.activeCount}`,
        "# TYPE tessera_media_workers_alive gauge",
        `tessera_media_workers_alive ${workers.filter((w) => w.pid !== undefined).length}`
      ]
      return { status: 200, headers: { "content-type": "text/plain; version=0.0.4" }, body: lines.join("\n") + "\n" }
    }))
}))
