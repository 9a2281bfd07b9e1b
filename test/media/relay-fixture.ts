/**
 * What the relay tests share: a tessera server built in this process from the same layers as `npm start` (so the
 * tests can reach its rooms and worker pool: tap a router, kill a worker), people signed in through the SDK, an
 * accepted call between a host and a customer, and a werift peer joining the call's relay through the RPCs.
 */
import { Context, ConfigProvider, Duration, Effect, Layer, Option } from "effect"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Enrollment } from "../../src/actors/Enrollment.js"
import type { CallId, CustomerId } from "../../src/domain/ids.js"
import type { LiveEvent } from "../../src/domain/liveEvents.js"
import { Rooms } from "../../src/media/Rooms.js"
import { WorkerPool } from "../../src/media/WorkerPool.js"
import { UwsServer } from "../../src/rpc/uws/server.js"
import * as Sdk from "../../src/sdk/node.js"
import { readServerSettings } from "../../src/server/Config.js"
import { ServerLive } from "../../src/server/Server.js"
import { testDatabaseUrl } from "../support/database.js"
import { type ConsumerParameters, type Kind, RelayReceiver, RelaySender } from "./relay-peer.js"

/** Ports of the relay's workers in these tests; the worker-pool test uses 47000-47999. */
const RTC_PORTS = { TESSERA_RTC_MIN_PORT: "46000", TESSERA_RTC_MAX_PORT: "46999" }

export interface RelayServer {
  readonly url: string
  readonly rooms: Rooms
  readonly pool: WorkerPool
  /** The operator's `tessera host enroll`: a one-time enrollment code. */
  readonly enrollHost: Effect.Effect<string>
}

/** The server's layers in this process, on a fresh database, with one media worker; `extraEnv` on top. */
export const inProcessServerWith = (extraEnv: Readonly<Record<string, string>>): Effect.Effect<RelayServer, never, Scope.Scope> => Effect.gen(function*() {
  const dataDir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-relay-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const env = {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: yield* testDatabaseUrl,
    TESSERA_MASTER_KEY: randomBytes(32).toString("base64"),
    TESSERA_DATA_DIR: dataDir,
    TESSERA_MEDIA_WORKERS: "1",
    ...RTC_PORTS,
    ...extraEnv
  }
  const provider = ConfigProvider.fromMap(new Map(Object.entries(env)))
  const settings = yield* Effect.orDie(Effect.withConfigProvider(readServerSettings, provider))
  const context = yield* Layer.build(ServerLive(settings).pipe(Layer.provide(Layer.setConfigProvider(provider)))).pipe(Effect.orDie)
  const server = Context.get(context, UwsServer)
  const enrollment = Context.get(context, Enrollment)
  return {
    url: `ws://127.0.0.1:${server.port}/rpc`,
    rooms: Context.get(context, Rooms),
    pool: Context.get(context, WorkerPool),
    enrollHost: Effect.map(Effect.orDie(enrollment.enrollHost()), ({ code }) => code)
  }
})

export const inProcessServer: Effect.Effect<RelayServer, never, Scope.Scope> = inProcessServerWith({})

export { enrollHostOn } from "../support/server.js"

export interface Party {
  readonly session: Sdk.DeviceSession
  readonly credentials: Sdk.DeviceCredentials
}
export interface Customer extends Party {
  readonly customerId: CustomerId
}

type Tag = LiveEvent["_tag"]
export type EventOf<T extends Tag> = Extract<LiveEvent, { readonly _tag: T }>

/** The next live event with this tag (and condition); the test fails if none comes within `seconds`. */
export const next = <T extends Tag>(party: Party, tag: T, where: (event: EventOf<T>) => boolean = () => true, seconds = 15) =>
  party.session.take((event): event is EventOf<T> => event._tag === tag && where(event as EventOf<T>)).pipe(
    Effect.timeoutFail({ duration: Duration.seconds(seconds), onTimeout: () => new Error(`no ${tag} within ${seconds} s`) }),
    Effect.orDie
  )

/** A host with one signed-in device, and `customers` activated customers of it, all present. */
export const practice = (url: string, enrollmentCode: string, customers: number) =>
  Effect.gen(function*() {
    const hostStore = Sdk.memoryKeyStore()
    const hostCredentials = yield* Sdk.enrollHostDevice(url, enrollmentCode, hostStore, { extractableKey: true })
    const host: Party = { session: yield* Sdk.signIn(hostCredentials, hostStore, { url }), credentials: hostCredentials }
    yield* host.session.setReady(true)
    const issued = yield* Effect.forEach(Array.from({ length: customers }), (_, n) =>
      Effect.gen(function*() {
        const sealedProfile = yield* Effect.promise(() =>
          Sdk.sealProfile(hostCredentials.profileKey!, { name: `Customer ${n}`, customerNumber: `K-${n}` }))
        const { customerId } = yield* host.session.rpc.host.createCustomer({ sealedProfile })
        const { code } = yield* host.session.rpc.host.issueActivationCode({ customerId })
        return { customerId, code }
      }))
    const activated = yield* Effect.forEach(issued, ({ customerId, code }) =>
      Effect.gen(function*() {
        const store = Sdk.memoryKeyStore()
        const credentials = yield* Sdk.activateCustomer(url, code, store, { extractableKey: true })
        const session = yield* Sdk.signIn(credentials, store, { url })
        yield* session.setReady(true)
        return { customerId, credentials, session } satisfies Customer
      }), { concurrency: "unbounded" })
    return { host, customers: activated }
  }).pipe(Effect.orDie)

/** The host calls the customer and the customer answers. */
export const acceptedCall = (host: Party, customer: Customer) =>
  Effect.gen(function*() {
    const { callId } = yield* host.session.rpc.call.invite({ peer: customer.customerId })
    yield* next(customer, "IncomingCall", (e) => e.callId === callId)
    yield* customer.session.rpc.call.accept({ callId })
    yield* next(host, "CallAccepted", (e) => e.callId === callId)
    return callId
  }).pipe(Effect.orDie)

/** What werift can receive: no header extensions, the two codecs of the relay with its own payload types. */
export const WERIFT_CAPABILITIES = {
  codecs: [
    { kind: "audio" as const, mimeType: "audio/opus", preferredPayloadType: 111, clockRate: 48000, channels: 2 },
    { kind: "video" as const, mimeType: "video/VP8", preferredPayloadType: 96, clockRate: 90000 }
  ],
  headerExtensions: []
}

export interface RelayedParty {
  readonly sender: RelaySender
  readonly producerId: string
  readonly receiver: RelayReceiver
  readonly consumer: ConsumerParameters
}

const close = (peer: { close(): Promise<void> }) => Effect.promise(() => peer.close().catch(() => undefined))

/**
 * One side of a relayed call in full: joins the relay, sends one `kind` track, and receives the other party's
 * (which is either already there or announced with RelayProducerAdded). Peers close with the scope.
 */
export const relayParty = (party: Party, callId: CallId, kind: Kind) =>
  Effect.gen(function*() {
    const rpc = party.session.rpc
    const joined = yield* rpc.relay.join({ callId })
    const sender = yield* Effect.acquireRelease(Effect.promise(() => RelaySender.prepare(joined.sendTransport, kind)), close)
    yield* rpc.relay.connectTransport({ callId, direction: "send", dtlsParameters: sender.dtlsParameters })
    yield* Effect.promise(() => sender.connect())
    const { producerId } = yield* rpc.relay.produce({ callId, kind, rtpParameters: sender.rtpParameters })

    const theirs = Option.match(Option.fromNullable(joined.producers[0]), {
      onSome: (track) => Effect.succeed(track.producerId),
      onNone: () => Effect.map(next(party, "RelayProducerAdded", (e) => e.callId === callId), (e) => e.producerId)
    })
    const consumer = yield* rpc.relay.consume({ callId, producerId: yield* theirs, rtpCapabilities: WERIFT_CAPABILITIES })
    const receiver = yield* Effect.acquireRelease(Effect.promise(() => RelayReceiver.prepare(joined.receiveTransport, [consumer])), close)
    yield* rpc.relay.connectTransport({ callId, direction: "receive", dtlsParameters: receiver.dtlsParameters })
    yield* Effect.promise(() => receiver.connect())
    yield* rpc.relay.resumeConsumer({ callId, consumerId: consumer.id })
    return { sender, producerId, receiver, consumer } satisfies RelayedParty
  }).pipe(Effect.orDie)
