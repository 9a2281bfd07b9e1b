/**
 * Onboarding against a real server process: a customer's app activating with the practice's code, a host device
 * enrolling with the operator's code, and what each bad code gets. The server allows 3 failed codes per client
 * address; tests that fail on purpose connect from their own loopback address so that they do not lock each other out.
 * The app's own onboarding (Sdk.activateCustomer / enrollHostDevice, fresh key pairs) runs where the device's view is
 * under test; elsewhere the same RPC is made with a pre-generated key pair (story.ts), which saves seconds per device.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive } from "../support/server.js"
import { activate, deviceKeys, enrollDevice, enrollHost, failure, fromAddress, Host, HostLive, newCustomer, next } from "./story.js"

const Fixture = HostLive.pipe(
  Layer.provideMerge(Layer.merge(ServerLive({ TESSERA_CODE_ATTEMPTS: "3", TESSERA_CODE_ATTEMPT_WINDOW_SECONDS: "600" }), Sdk.NodeWebSocket))
)

describe("onboarding", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("a customer activates with the practice's code; the host is told; the app signs in", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code, customerId } = yield* newCustomer(host)
        const store = Sdk.memoryKeyStore()
        const credentials = yield* Sdk.activateCustomer(server.url, code, store, { extractableKey: true })
        expect(credentials.config.body.kind).toBe("customer")
        // The config names the address the server really listens on (PORT=0: the bound port).
        expect(credentials.config.body.serverAddress).toBe(server.url)
        expect(yield* Effect.promise(() => store.load())).toBeDefined()
        const notice = yield* next(host.session, "CustomerActivatedNotice")
        expect(notice.customerId).toBe(customerId)
        const session = yield* Sdk.signIn(credentials, store, { url: server.url })
        expect(session.kind).toBe("customer")
        const [summary] = (yield* host.session.rpc.host.listCustomers()).filter((c) => c.customerId === customerId)
        expect(summary?.status).toBe("active")
      }))

    it.scoped("a mistyped activation code: ActivationCodeInvalid, and the app stays unactivated", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code } = yield* newCustomer(host)
        // The same symbols, one changed: what a typo does.
        const typo = (code[0] === "A" ? "B" : "A") + code.slice(1)
        const store = Sdk.memoryKeyStore()
        const error = yield* failure(Sdk.activateCustomer(server.url, typo, store, { extractableKey: true }))
        expect(error._tag).toBe("ActivationCodeInvalid")
        expect(yield* Effect.promise(() => store.load())).toBeUndefined()
        // Not even a code: also ActivationCodeInvalid, not a crash.
        const garbage = yield* failure(activate(server, "hello?", store))
        expect(garbage._tag).toBe("ActivationCodeInvalid")
      }).pipe(Effect.provide(fromAddress("127.0.0.11"))))

    it.scoped("a code past its validity: ActivationCodeExpired", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code } = yield* newCustomer(host, undefined, 1)
        yield* Effect.sleep("1500 millis")
        const error = yield* failure(activate(server, code))
        expect(error._tag).toBe("ActivationCodeExpired")
      }).pipe(Effect.provide(fromAddress("127.0.0.12"))))

    it.scoped("a code that was already used: ActivationCodeUsed, the first device keeps its access", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code } = yield* newCustomer(host)
        const first = Sdk.memoryKeyStore()
        const credentials = yield* activate(server, code, first)
        const error = yield* failure(activate(server, code))
        expect(error._tag).toBe("ActivationCodeUsed")
        const session = yield* Sdk.signIn(credentials, first, { url: server.url })
        expect(session.kind).toBe("customer")
      }).pipe(Effect.provide(fromAddress("127.0.0.13"))))

    it.scoped("a code replaced by a newer one: ActivationCodeSuperseded; the newer code works", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code: old, customerId } = yield* newCustomer(host)
        const { code: fresh } = yield* host.session.rpc.host.issueActivationCode({ customerId })
        expect(fresh).not.toBe(old)
        const error = yield* failure(activate(server, old))
        expect(error._tag).toBe("ActivationCodeSuperseded")
        const credentials = yield* activate(server, fresh)
        expect(credentials.config.body.kind).toBe("customer")
      }).pipe(Effect.provide(fromAddress("127.0.0.14"))))

    it.scoped("enrollment codes: unknown, expired and used ones are refused with the reason", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const unknown = yield* failure(enrollDevice(server, "0000-0000-0000"))
        expect(unknown).toMatchObject({ _tag: "EnrollmentCodeInvalid", reason: "unknown" })

        const { code } = yield* enrollHost(server)
        const store = Sdk.memoryKeyStore()
        const credentials = yield* Sdk.enrollHostDevice(server.url, code, store, { extractableKey: true })
        expect(credentials.config.body.kind).toBe("host")
        expect(credentials.profileKey).toHaveLength(32)
        const used = yield* failure(enrollDevice(server, code))
        expect(used).toMatchObject({ _tag: "EnrollmentCodeInvalid", reason: "used" })
      }).pipe(Effect.provide(fromAddress("127.0.0.15"))))

    it.scoped("an expired enrollment code is refused as expired", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { code } = yield* enrollHost(server, 1)
        yield* Effect.sleep("1500 millis")
        const expired = yield* failure(enrollDevice(server, code))
        expect(expired).toMatchObject({ _tag: "EnrollmentCodeInvalid", reason: "expired" })
      }).pipe(Effect.provide(fromAddress("127.0.0.16"))))

    it.scoped("guessing is rate-limited: after 3 wrong codes even the right one gets TooManyAttempts, other addresses are unaffected", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code } = yield* newCustomer(host)
        // A guesser does not need the SDK: one connection, one key, code after code.
        const { publicKeySpki } = yield* deviceKeys
        const guesser = yield* Sdk.openConnection(server.url).pipe(Effect.provide(fromAddress("127.0.0.17")))
        const guesses = ["0000-0000-0001", "0000-0000-0002", "0000-0000-0003"]
        for (const guess of guesses) {
          const error = yield* failure(guesser.rpc.customer.activate({ activationCode: guess, devicePublicKey: publicKeySpki }))
          expect(error._tag).toBe("ActivationCodeInvalid")
        }
        const locked = yield* failure(guesser.rpc.customer.activate({ activationCode: code, devicePublicKey: publicKeySpki }))
        expect(locked._tag).toBe("TooManyAttempts")
        expect(locked._tag === "TooManyAttempts" && locked.retryAfterSeconds).toBeGreaterThan(0)
        // Enrollment codes are behind the same limit, also on a new connection from that address.
        const again = yield* Sdk.openConnection(server.url).pipe(Effect.provide(fromAddress("127.0.0.17")))
        const enrolling = yield* failure(again.rpc.host.enrollDevice({ enrollmentCode: "0000-0000-0004", devicePublicKey: publicKeySpki }))
        expect(enrolling._tag).toBe("TooManyAttempts")
        // The customer, from its own address, still activates with the code.
        const credentials = yield* activate(server, code).pipe(Effect.provide(fromAddress("127.0.0.18")))
        expect(credentials.config.body.kind).toBe("customer")
      }))

    it.scoped("a bad device key is refused before the code is looked at, so it tells a guesser nothing", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code } = yield* newCustomer(host)
        const connection = yield* Sdk.openConnection(server.url).pipe(Effect.provide(fromAddress("127.0.0.20")))
        const right = yield* failure(connection.rpc.customer.activate({ activationCode: code, devicePublicKey: new Uint8Array(550) }))
        const wrong = yield* failure(connection.rpc.customer.activate({ activationCode: "0000-0002-0001", devicePublicKey: new Uint8Array(550) }))
        expect(right._tag).toBe("InvalidRequest")
        expect(wrong._tag).toBe("InvalidRequest")
        // The code was not used up: the customer still activates with it.
        const credentials = yield* activate(server, code).pipe(Effect.provide(fromAddress("127.0.0.21")))
        expect(credentials.config.body.kind).toBe("customer")
      }))

    it.scoped("two apps activating with the same code at once: exactly one gets a config, the other a typed error", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const { code } = yield* newCustomer(host)
        const [a, b] = yield* Effect.all([deviceKeys, deviceKeys])
        const [ca, cb] = yield* Effect.all([Sdk.openConnection(server.url), Sdk.openConnection(server.url)])
        const outcomes = yield* Effect.all(
          [
            Effect.either(ca.rpc.customer.activate({ activationCode: code, devicePublicKey: a.publicKeySpki })),
            Effect.either(cb.rpc.customer.activate({ activationCode: code, devicePublicKey: b.publicKeySpki }))
          ],
          { concurrency: 2 }
        )
        const winners = outcomes.flatMap((o, i) => (o._tag === "Right" ? [{ config: o.right, keys: i === 0 ? a : b }] : []))
        const losers = outcomes.flatMap((o) => (o._tag === "Left" ? [o.left] : []))
        expect(winners).toHaveLength(1)
        expect(losers).toHaveLength(1)
        expect(["ActivationCodeUsed", "AccountBusy"]).toContain(losers[0]!._tag)
        // The winner is the customer's device from now on.
        const session = yield* Sdk.signIn(winners[0]!, Sdk.memoryKeyStore(), { url: server.url })
        expect(session.kind).toBe("customer")
      }).pipe(Effect.provide(fromAddress("127.0.0.19"))))
    // Last in the file: connections made right after this burst were seen to come from its local address too.
    it.scoped("guesses sent in parallel are counted as they arrive: at most 3 of 40 reach the codes", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const { publicKeySpki } = yield* deviceKeys
        const guesser = yield* Sdk.openConnection(server.url).pipe(Effect.provide(fromAddress("127.0.0.19")))
        const outcomes = yield* Effect.all(
          Array.from({ length: 40 }, (_, i) =>
            Effect.flip(guesser.rpc.customer.activate({
              activationCode: `0000-0001-${String(i).padStart(4, "0")}`,
              devicePublicKey: publicKeySpki
            }))),
          { concurrency: "unbounded" }
        )
        const tags = outcomes.map((error) => error._tag)
        // At most the allowed 3 reach the codes (fewer if this address already failed); the rest are refused.
        const reached = tags.filter((tag) => tag === "ActivationCodeInvalid").length
        expect(reached).toBeLessThanOrEqual(3)
        expect(tags.filter((tag) => tag === "TooManyAttempts")).toHaveLength(40 - reached)
      }))
  })
})
