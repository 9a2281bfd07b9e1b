/**
 * The whole story with the server process restarted between every step: accounts live only in the event store, so
 * each step finds what the previous ones did, rebuilt from events. Idle account actors are passivated after 1 s here,
 * so the same holds within one process.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Layer, Scope } from "effect"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive, startTestServer } from "../support/server.js"
import { activate, enrollDevice, enrollHost, ERIKA, failure, next, signIn } from "./story.js"

const Fixture = Layer.merge(ServerLive({ TESSERA_ACTOR_IDLE_SECONDS: "1" }), Sdk.NodeWebSocket)

/** Runs one step of the story with its own connections, which end with the step. */
const step = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    return yield* effect.pipe(Scope.extend(scope), Effect.ensuring(Scope.close(scope, Exit.void)))
  })

const metric = (body: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(body)?.[1])

describe("restart", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "300 seconds" })((it) => {
    it.scoped("every step of the story survives a restart of the server", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const restart = Effect.orDie(server.restart)

        const { code: enrollmentCode } = yield* enrollHost(server)
        yield* restart

        const hostStore = Sdk.memoryKeyStore()
        const hostCredentials = yield* step(enrollDevice(server, enrollmentCode, hostStore))
        yield* restart

        const host = { credentials: hostCredentials, store: hostStore }
        const sealedProfile = yield* Effect.promise(() => Sdk.sealProfile(hostCredentials.profileKey!, ERIKA))
        const { customerId } = yield* step(Effect.flatMap(signIn(server, host), (s) => s.rpc.host.createCustomer({ sealedProfile })))
        yield* restart

        const { code } = yield* step(Effect.flatMap(signIn(server, host), (s) => s.rpc.host.issueActivationCode({ customerId })))
        yield* restart

        const customerStore = Sdk.memoryKeyStore()
        const customerCredentials = yield* step(activate(server, code, customerStore))
        const customer = { credentials: customerCredentials, store: customerStore }
        yield* restart

        yield* step(Effect.gen(function*() {
          const hostSession = yield* signIn(server, host)
          const [summary, ...others] = yield* hostSession.rpc.host.listCustomers()
          expect(others).toEqual([])
          expect(summary).toMatchObject({ customerId, status: "active", online: false })
          expect(yield* Effect.promise(() => Sdk.openProfile(hostCredentials.profileKey!, summary!.sealedProfile))).toEqual(ERIKA)
          const customerSession = yield* signIn(server, customer)
          expect((yield* customerSession.rpc.customer.host()).identityKeys).toHaveLength(1)
          yield* Effect.all([hostSession.setReady(true), customerSession.setReady(true)])
          yield* next(hostSession, "PresenceChanged", (e) => e.account === customerId && e.online)
          // A restart while connected: the server shuts down gracefully, the apps see it go away (1001), not a
          // revocation, and keep their credentials.
          expect(yield* server.stop).toEqual({ code: 0, signal: null })
          for (const session of [hostSession, customerSession]) {
            const closed = yield* Deferred.await(session.closed).pipe(Effect.timeout(Duration.seconds(10)), Effect.orDie)
            expect(closed).toEqual({ code: 1001, revoked: false })
          }
          expect(yield* Effect.promise(() => customerStore.load())).toBeDefined()
        }))
        yield* restart

        yield* step(Effect.flatMap(signIn(server, host), (s) => s.rpc.host.deleteCustomer({ customerId })))
        yield* restart

        yield* step(Effect.gen(function*() {
          expect((yield* failure(signIn(server, customer)))._tag).toBe("ConfigRevoked")
          const hostSession = yield* signIn(server, host)
          expect(yield* hostSession.rpc.host.listCustomers()).toEqual([])
          expect((yield* failure(hostSession.rpc.host.issueActivationCode({ customerId })))._tag).toBe("CustomerNotFound")
          // Enrollment codes are single use across restarts too.
          expect(yield* failure(enrollDevice(server, enrollmentCode))).toMatchObject({ _tag: "EnrollmentCodeInvalid", reason: "used" })
        }))
      }), 300_000)

    it.scoped("a server without its master key refuses to start and says why, in one line", () =>
      Effect.gen(function*() {
        const refused = yield* failure(startTestServer({ TESSERA_MASTER_KEY: "" }))
        expect(refused.message).toMatch(/tessera: cannot start: DATABASE_URL is set but no master key is configured/)
        expect(refused.message).not.toContain("postgres://")
      }))

    it.scoped("idle account actors are passivated and come back from their events", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const metrics = Effect.promise(() => fetch(`${server.httpUrl}/metrics`).then((r) => r.text()))
        const { code: enrollmentCode } = yield* enrollHost(server)
        const hostStore = Sdk.memoryKeyStore()
        const credentials = yield* enrollDevice(server, enrollmentCode, hostStore)
        const host = yield* signIn(server, { credentials, store: hostStore })
        const sealedProfile = yield* Effect.promise(() => Sdk.sealProfile(credentials.profileKey!, ERIKA))
        const { customerId } = yield* host.rpc.host.createCustomer({ sealedProfile })
        const { code } = yield* host.rpc.host.issueActivationCode({ customerId })
        expect(metric(yield* metrics, `tessera_actors_active\\{kind="customer"\\}`)).toBeGreaterThanOrEqual(1)
        yield* Effect.sleep("3 seconds")
        const idle = yield* metrics
        expect(metric(idle, `tessera_actors_active\\{kind="host"\\}`)).toBe(0)
        expect(metric(idle, `tessera_actors_active\\{kind="customer"\\}`)).toBe(0)
        // The passivated customer still knows its code, the host still knows its customer.
        const activated = yield* activate(server, code)
        expect(activated.config.body.kind).toBe("customer")
        const [summary] = yield* host.rpc.host.listCustomers()
        expect(summary).toMatchObject({ customerId, status: "active" })
      }))
  })
})
