/**
 * Connecting to a real server: a connection proves possession of the device key by signing the server's fresh
 * challenge, over a config file the server signed. Everything else a client could send instead gets a typed error.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { utf8Bytes } from "../../src/crypto/bytes.js"
import { type IdentityKeyPair, signWithIdentity } from "../../src/crypto/identity.js"
import { authenticationMessage, CustomerConfigBody, HostConfigBody, SignedConfig } from "../../src/domain/config.js"
import * as Sdk from "../../src/sdk/node.js"
import { Server, ServerLive } from "../support/server.js"
import { customerDevice, deviceKeys, failure, Host, HostLive } from "./story.js"

const Fixture = HostLive.pipe(Layer.provideMerge(Layer.merge(ServerLive(), Sdk.NodeWebSocket)))

const sign = (keys: IdentityKeyPair, nonce: string, credentials: Sdk.DeviceCredentials) =>
  Effect.promise(() =>
    signWithIdentity(keys.privateKey, utf8Bytes(authenticationMessage(nonce, credentials.config.body.deviceFingerprint)))
  )

describe("auth", () => {
  layer(Fixture, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("a fresh challenge signed with the device key authenticates the connection", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const connection = yield* Sdk.openConnection(server.url)
        const { nonce } = yield* connection.rpc.session.challenge()
        const signature = yield* sign(host.credentials.keys, nonce, host.credentials)
        const { kind } = yield* connection.rpc.session.authenticate({ config: host.credentials.config, signature })
        expect(kind).toBe("host")
        expect(yield* connection.rpc.host.listCustomers()).toEqual([])
      }))

    it.scoped("a signature replayed on a new connection: SignatureInvalid (new challenge) or ChallengeInvalid (none)", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const first = yield* Sdk.openConnection(server.url)
        const { nonce } = yield* first.rpc.session.challenge()
        const signature = yield* sign(host.credentials.keys, nonce, host.credentials)
        yield* first.rpc.session.authenticate({ config: host.credentials.config, signature })

        // Someone who recorded that exchange replays it on a connection of their own.
        const withoutChallenge = yield* Sdk.openConnection(server.url)
        const none = yield* failure(withoutChallenge.rpc.session.authenticate({ config: host.credentials.config, signature }))
        expect(none._tag).toBe("ChallengeInvalid")

        const withChallenge = yield* Sdk.openConnection(server.url)
        const fresh = yield* withChallenge.rpc.session.challenge()
        expect(fresh.nonce).not.toBe(nonce)
        const replayed = yield* failure(withChallenge.rpc.session.authenticate({ config: host.credentials.config, signature }))
        expect(replayed._tag).toBe("SignatureInvalid")
        // The replay used up that challenge: a correct answer to it now comes too late.
        const late = yield* sign(host.credentials.keys, fresh.nonce, host.credentials)
        const used = yield* failure(withChallenge.rpc.session.authenticate({ config: host.credentials.config, signature: late }))
        expect(used._tag).toBe("ChallengeInvalid")
        // Neither connection got anywhere.
        expect((yield* failure(withChallenge.rpc.host.listCustomers()))._tag).toBe("Unauthenticated")
      }))

    it.scoped("a signature by another key over the right config: SignatureInvalid", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const stranger = yield* deviceKeys
        const connection = yield* Sdk.openConnection(server.url)
        const { nonce } = yield* connection.rpc.session.challenge()
        const signature = yield* sign(stranger, nonce, host.credentials)
        const error = yield* failure(connection.rpc.session.authenticate({ config: host.credentials.config, signature }))
        expect(error._tag).toBe("SignatureInvalid")
        // Also through the SDK: someone who copied the config file but not the key cannot sign in.
        const copied = yield* failure(Sdk.signIn({ config: host.credentials.config, keys: stranger }, Sdk.memoryKeyStore(), { url: server.url }))
        expect(copied._tag).toBe("SignatureInvalid")
      }))

    it.scoped("a config file with a changed body or signature: ConfigInvalid", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const customer = yield* customerDevice(server, host)
        const body = customer.credentials.config.body as CustomerConfigBody
        // A body edited after signing (here: its date), with the server's signature kept.
        const tamperedBody = new SignedConfig({
          body: new CustomerConfigBody({ ...body, issuedAt: body.issuedAt + 1 }),
          signature: customer.credentials.config.signature
        })
        const hostBody = host.credentials.config.body as HostConfigBody
        const tamperedSignature = new SignedConfig({
          body: hostBody,
          signature: (host.credentials.config.signature[0] === "A" ? "B" : "A") + host.credentials.config.signature.slice(1)
        })
        for (const [config, keys] of [[tamperedBody, customer.credentials.keys], [tamperedSignature, host.credentials.keys]] as const) {
          const error = yield* failure(Sdk.signIn({ config, keys }, Sdk.memoryKeyStore(), { url: server.url }))
          expect(error._tag).toBe("ConfigInvalid")
        }
        // The genuine config still works: nothing was spoiled by the attempts.
        const session = yield* Sdk.signIn(customer.credentials, customer.store, { url: server.url })
        expect(session.kind).toBe("customer")
      }))

    it.scoped("before authenticating, every account RPC gets Unauthenticated", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const connection = yield* Sdk.openConnection(server.url)
        const attempts: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [
          connection.rpc.host.listCustomers(),
          connection.rpc.host.createCustomer({ sealedProfile: "x" }),
          connection.rpc.customer.host(),
          connection.rpc.presence.set({ ready: true }),
          connection.rpc.call.invite({ peer: host.hostId })
        ]
        for (const attempt of attempts) expect((yield* failure(attempt))._tag).toBe("Unauthenticated")
        // Still a working connection: it can authenticate now.
        const { nonce } = yield* connection.rpc.session.challenge()
        const signature = yield* sign(host.credentials.keys, nonce, host.credentials)
        expect((yield* connection.rpc.session.authenticate({ config: host.credentials.config, signature })).kind).toBe("host")
      }))

    it.scoped("a customer's app calling host RPCs, or a host calling customer RPCs: NotPermitted", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const customer = yield* customerDevice(server, host)
        const rpc = customer.session.rpc
        expect((yield* failure(rpc.host.listCustomers()))._tag).toBe("NotPermitted")
        expect((yield* failure(rpc.host.createCustomer({ sealedProfile: "x" })))._tag).toBe("NotPermitted")
        expect((yield* failure(rpc.host.deleteCustomer({ customerId: customer.customerId })))._tag).toBe("NotPermitted")
        expect((yield* failure(rpc.host.issueActivationCode({ customerId: customer.customerId })))._tag).toBe("NotPermitted")
        expect((yield* failure(host.session.rpc.customer.host()))._tag).toBe("NotPermitted")
        // What the customer may ask: its own host's device keys.
        const own = yield* rpc.customer.host()
        expect(own.hostId).toBe(host.hostId)
        expect(own.identityKeys).toHaveLength(1)
      }))

    it.scoped("a connection authenticates once: a second authenticate is refused", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const host = yield* Host
        const customer = yield* customerDevice(server, host)
        // The host's connection tries to become the customer as well.
        const { nonce } = yield* host.session.rpc.session.challenge()
        const signature = yield* sign(customer.credentials.keys, nonce, customer.credentials)
        const error = yield* failure(host.session.rpc.session.authenticate({ config: customer.credentials.config, signature }))
        expect(error._tag).toBe("ChallengeInvalid")
        expect((yield* failure(host.session.rpc.customer.host()))._tag).toBe("NotPermitted")
      }))
  })
})
