/**
 * The people of the end-to-end tests, acting through the real SDK on a real server process: the operator enrolls a
 * host (with the server's own account layer on the same database and key, as `tessera host enroll` does), a host
 * device enrolls and signs in, a host creates a customer with a sealed profile and an activation code, a customer's
 * app activates and signs in. Device key pairs come from a pre-generated pool (see `deviceKeys`). Also: waiting for
 * live events with a deadline, and clients from other source addresses.
 */
import * as Socket from "@effect/platform/Socket"
import { ConfigProvider, Context, Duration, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { Enrollment } from "../../src/actors/Enrollment.js"
import { generateIdentityKeyPair, type IdentityKeyPair, importIdentityKeyPair } from "../../src/crypto/identity.js"
import type { LiveEvent } from "../../src/domain/liveEvents.js"
import type { CustomerId, HostId } from "../../src/domain/ids.js"
import * as Sdk from "../../src/sdk/node.js"
import { AccountsLive } from "../../src/server/Accounts.js"
import { readServerSettings } from "../../src/server/Config.js"
import { Server, type TestServer } from "../support/server.js"

export const ERIKA: Sdk.CustomerProfile = { name: "Erika Mustermann", customerNumber: "K-4711" }

/** Runs `effect` with the server's account services, configured exactly like the server process. */
export const asOperator = <A, E>(server: TestServer, effect: Effect.Effect<A, E, Enrollment>) =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(readServerSettings)
    return yield* effect.pipe(Effect.provide(AccountsLive(settings, { migrate: false, maxConnections: 1 })))
  }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(server.env)))),
    Effect.orDie
  )

/** `tessera host enroll`: a new host account and its one-time enrollment code. */
export const enrollHost = (server: TestServer, validForSeconds?: number) =>
  asOperator(server, Effect.flatMap(Enrollment, (enrollment) => enrollment.enrollHost(validForSeconds)))

export interface Device {
  readonly credentials: Sdk.DeviceCredentials
  readonly store: Sdk.KeyStore
  readonly session: Sdk.DeviceSession
}

export interface HostDevice extends Device {
  readonly hostId: HostId
}

export interface CustomerDevice extends Device {
  readonly customerId: CustomerId
}

export const signIn = (server: TestServer, device: Pick<Device, "credentials" | "store">) =>
  Sdk.signIn(device.credentials, device.store, { url: server.url })

const fixtureKeys = (JSON.parse(
  readFileSync(fileURLToPath(new URL("fixtures/device-keys.json", import.meta.url)), "utf8")
) as ReadonlyArray<{ readonly pkcs8: string; readonly spki: string }>).map((key) => ({
  pkcs8: new Uint8Array(Buffer.from(key.pkcs8, "base64")),
  spki: new Uint8Array(Buffer.from(key.spki, "base64"))
}))
let keysHandedOut = 0

/**
 * A device identity key pair, distinct from every other one handed out in this test file. An RSA-4096 key pair takes
 * seconds to generate on a busy machine, so devices whose onboarding is not under test take theirs from a pool of
 * pre-generated ones (fixtures/device-keys.json); past the pool, fresh ones are generated.
 */
export const deviceKeys: Effect.Effect<IdentityKeyPair> = Effect.promise(() => {
  const key = fixtureKeys[keysHandedOut++]
  return key === undefined
    ? generateIdentityKeyPair({ extractable: true })
    : importIdentityKeyPair(key.pkcs8, key.spki, { extractable: true })
})

/** What `Sdk.enrollHostDevice` does, with a key pair from the pool. */
export const enrollDevice = (server: TestServer, enrollmentCode: string, store: Sdk.KeyStore = Sdk.memoryKeyStore()) =>
  Effect.scoped(Effect.gen(function*() {
    const keys = yield* deviceKeys
    const connection = yield* Sdk.openConnection(server.url)
    const config = yield* connection.rpc.host.enrollDevice({ enrollmentCode, devicePublicKey: keys.publicKeySpki })
    const credentials: Sdk.DeviceCredentials = { config, keys, profileKey: Sdk.newProfileKey() }
    yield* Effect.promise(() => store.save(credentials))
    return credentials
  }))

/** What `Sdk.activateCustomer` does, with a key pair from the pool. */
export const activate = (server: TestServer, activationCode: string, store: Sdk.KeyStore = Sdk.memoryKeyStore()) =>
  Effect.scoped(Effect.gen(function*() {
    const keys = yield* deviceKeys
    const connection = yield* Sdk.openConnection(server.url)
    const config = yield* connection.rpc.customer.activate({ activationCode, devicePublicKey: keys.publicKeySpki })
    const credentials: Sdk.DeviceCredentials = { config, keys }
    yield* Effect.promise(() => store.save(credentials))
    return credentials
  }))

/** A host account with one enrolled, signed-in device. */
export const hostDevice = (server: TestServer) =>
  Effect.gen(function*() {
    const { code, hostId } = yield* enrollHost(server)
    const store = Sdk.memoryKeyStore()
    const credentials = yield* enrollDevice(server, code, store)
    const session = yield* Sdk.signIn(credentials, store, { url: server.url })
    return { hostId, credentials, store, session } satisfies HostDevice
  })

/** The host creates a customer account (profile sealed on its device) and issues an activation code. */
export const newCustomer = (host: HostDevice, profile: Sdk.CustomerProfile = ERIKA, validForSeconds?: number) =>
  Effect.gen(function*() {
    const sealedProfile = yield* Effect.promise(() => Sdk.sealProfile(host.credentials.profileKey!, profile))
    const { customerId } = yield* host.session.rpc.host.createCustomer({ sealedProfile })
    const issued = yield* host.session.rpc.host.issueActivationCode(
      validForSeconds === undefined ? { customerId } : { customerId, validForSeconds }
    )
    return { customerId, code: issued.code, expiresAt: issued.expiresAt }
  })

/** A customer of `host` whose app has activated and signed in. */
export const customerDevice = (server: TestServer, host: HostDevice, profile?: Sdk.CustomerProfile) =>
  Effect.gen(function*() {
    const { code, customerId } = yield* newCustomer(host, profile)
    const store = Sdk.memoryKeyStore()
    const credentials = yield* activate(server, code, store)
    const session = yield* Sdk.signIn(credentials, store, { url: server.url })
    return { customerId, credentials, store, session } satisfies CustomerDevice
  })

type Tag = LiveEvent["_tag"]
export type EventOf<T extends Tag> = Extract<LiveEvent, { readonly _tag: T }>

/** Matches live events by tag (and an optional condition), for `DeviceSession.take`. */
export const event = <T extends Tag>(tag: T, where: (event: EventOf<T>) => boolean = () => true) =>
(candidate: LiveEvent): candidate is EventOf<T> => candidate._tag === tag && where(candidate as EventOf<T>)

/** The next matching event, failing the test if none arrives within `seconds`. */
export const next = <T extends Tag>(
  session: Sdk.DeviceSession,
  tag: T,
  where?: (event: EventOf<T>) => boolean,
  seconds = 10
) =>
  session.take(event(tag, where)).pipe(
    Effect.timeoutFail({
      duration: Duration.seconds(seconds),
      onTimeout: () => new Error(`no ${tag} event within ${seconds} s`)
    }),
    Effect.orDie
  )

/** The events a device received so far (memory only). */
export const received = (session: Sdk.DeviceSession) => session.received.get

/** Fails with the error of an effect expected to fail; dies when it succeeds. */
export const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

interface WsModule {
  readonly WebSocket: new(url: string, protocols: string | Array<string> | undefined, options: { localAddress: string }) => unknown
}
const { WebSocket: NodeWs } = createRequire(import.meta.url)("ws") as WsModule

/**
 * WebSockets opened from another loopback source address (127.0.0.0/8 is all loopback on Linux): another client
 * as far as per-address limits go.
 */
export const fromAddress = (localAddress: string): Layer.Layer<Socket.WebSocketConstructor> =>
  Layer.succeed(
    Socket.WebSocketConstructor,
    (url, protocols) => new NodeWs(url, protocols, { localAddress }) as globalThis.WebSocket
  )

export class Host extends Context.Tag("test/Host")<Host, HostDevice>() {}

/** One signed-in host device shared by the tests of a file (each key pair costs seconds on a busy machine). */
export const HostLive: Layer.Layer<Host, never, Server | Socket.WebSocketConstructor> = Layer.scoped(
  Host,
  Effect.flatMap(Server, hostDevice).pipe(Effect.orDie)
)
