/**
 * The demo's host process: the practice's device, driven by the coordinator (main.ts) over IPC. It keeps its key
 * pair, config and profile key in its own key store file, seals customer profiles before they leave it, and talks to
 * the server only over its WebSocket.
 */
import { Effect } from "effect"
import { stat } from "node:fs/promises"
import { fromBase64Url } from "../crypto/bytes.js"
import type { CustomerId, CallId } from "../domain/ids.js"
import type { CallAccepted, CustomerActivatedNotice, PresenceChanged } from "../domain/liveEvents.js"
import * as Sdk from "../sdk/node.js"
import {
  check,
  type DemoSignal,
  deviceRuntime,
  keysDestroyed,
  loadCredentials,
  negotiationMessages,
  receiveMessages,
  relayedPlaintext,
  secureDemoCall,
  takeEvent
} from "./device.js"
import { serveCommands } from "./ipc.js"

const device = deviceRuntime()
let store: Sdk.KeyStore | undefined
let session: Sdk.DeviceSession | undefined
let customerId: CustomerId | undefined
let callId: CallId | undefined
let secure: Sdk.SecureCall<DemoSignal> | undefined

const need = <A>(value: A | undefined, what: string): Effect.Effect<A, Error> =>
  value === undefined ? Effect.fail(new Error(`no ${what} yet`)) : Effect.succeed(value)

const current = Effect.suspend(() => Effect.all({ session: need(session, "session"), customerId: need(customerId, "customer") }))

const customerSummary = Effect.gen(function*() {
  const { session, customerId } = yield* current
  const customers = yield* session.rpc.host.listCustomers()
  return customers.find((customer) => customer.customerId === customerId)
})

const containsText = (bytes: Uint8Array, text: string) => Buffer.from(bytes).includes(Buffer.from(text, "utf8"))

export const commands = {
  /** Redeems the operator's enrollment code: a fresh key pair, the signed config and a profile key in the store. */
  enroll: (args: { readonly url: string; readonly code: string; readonly storePath: string }) =>
    device.run(Effect.gen(function*() {
      store = Sdk.fileKeyStore(args.storePath)
      const credentials = yield* Sdk.enrollHostDevice(args.url, args.code, store, { extractableKey: true })
      const saved = yield* loadCredentials(store)
      yield* check(saved.config.signature === credentials.config.signature, "the key store does not hold the new config")
      yield* check(saved.profileKey !== undefined, "the key store holds no profile key")
      const mode = (yield* Effect.promise(() => stat(args.storePath))).mode & 0o777
      return { kind: saved.config.body.kind, mode }
    })),

  /** Signs in with what the key store holds, at the server address its config names. */
  signIn: () =>
    device.run(Effect.gen(function*() {
      const credentials = yield* loadCredentials(yield* need(store, "key store"))
      session = yield* Sdk.signIn(credentials, store!)
      return { kind: session.kind }
    })),

  /**
   * Creates the customer's account with the profile sealed here; checks that what the server keeps is exactly that
   * ciphertext, that it shows neither the name nor the customer number, and that only the profile key opens it.
   */
  createCustomer: (profile: Sdk.CustomerProfile) =>
    device.run(Effect.gen(function*() {
      const host = yield* need(session, "session")
      const profileKey = yield* need(host.credentials.profileKey, "profile key")
      const sealed = yield* Effect.promise(() => Sdk.sealProfile(profileKey, profile))
      customerId = (yield* host.rpc.host.createCustomer({ sealedProfile: sealed })).customerId
      const summary = yield* customerSummary
      yield* check(summary !== undefined, "the new customer is not in the host's list")
      const stored = summary!.sealedProfile
      yield* check(stored === sealed, "the server returns another profile than the sealed one it was sent")
      const bytes = fromBase64Url(stored)
      for (const text of [profile.name, profile.customerNumber ?? profile.name]) {
        yield* check(!stored.includes(text) && !containsText(bytes, text), "the stored profile shows its plaintext")
      }
      const opened = yield* Effect.promise(() => Sdk.openProfile(profileKey, stored))
      yield* check(
        opened.name === profile.name && opened.customerNumber === profile.customerNumber,
        "the stored profile does not open to what was sealed"
      )
      const otherKey = yield* Effect.promise(() =>
        Sdk.openProfile(Sdk.newProfileKey(), stored).then(() => true, () => false)
      )
      yield* check(!otherKey, "another key opens the stored profile")
      return { sealedBytes: bytes.length, status: summary!.status }
    })),

  /** A fresh activation code for the customer, to be handed over outside tessera. */
  issueCode: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      const issued = yield* session.rpc.host.issueActivationCode({ customerId })
      return { code: issued.code, validForSeconds: Math.round((issued.expiresAt - Date.now()) / 1000) }
    })),

  /** Waits for the live notice that this customer has activated, then checks the account's status. */
  awaitActivation: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      yield* takeEvent(session, (event): event is CustomerActivatedNotice =>
        event._tag === "CustomerActivatedNotice" && event.customerId === customerId)
      const summary = yield* customerSummary
      return { status: summary?.status ?? "missing" }
    })),

  goOnline: () => device.run(Effect.flatMap(need(session, "session"), (session) => session.setReady(true))),

  /** Waits until the customer is seen online, and checks that the host's list says so too. */
  awaitCustomerOnline: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      yield* takeEvent(session, (event): event is PresenceChanged =>
        event._tag === "PresenceChanged" && event.account === customerId && event.online)
      const summary = yield* customerSummary
      return { listedOnline: summary?.online ?? false }
    })),

  call: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      callId = (yield* session.rpc.call.invite({ peer: customerId })).callId
      return { callId }
    })),

  awaitAccepted: () =>
    device.run(Effect.gen(function*() {
      const host = yield* need(session, "session")
      const call = yield* need(callId, "call")
      yield* takeEvent(host, (event): event is CallAccepted => event._tag === "CallAccepted" && event.callId === call)
    })),

  /** Runs the call's handshake as the caller; the safety code is for both parties to compare. */
  secureCall: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      const call = yield* need(callId, "call")
      secure = yield* secureDemoCall(session, call, "caller", customerId)
      return { safetyCode: secure.safetyCode }
    })),

  /** The SDP offer and ICE candidates, sealed; resolves with what was sent, for the other side to compare. */
  sendOffer: () =>
    device.run(Effect.gen(function*() {
      const call = yield* need(secure, "secured call")
      const messages = negotiationMessages("offer")
      yield* Effect.forEach(messages, call.send)
      return messages
    })),

  /** The customer's answer and candidates, and whether what the server relayed showed any of it. */
  receiveAnswer: (count: number) =>
    device.run(Effect.gen(function*() {
      const host = yield* need(session, "session")
      const call = yield* need(secure, "secured call")
      const messages = yield* receiveMessages(call, count)
      return { messages, ...(yield* relayedPlaintext(host, call.callId, messages)) }
    })),

  /** Hangs up through the secured call, which destroys its keys. */
  hangUp: () =>
    device.run(Effect.gen(function*() {
      const call = yield* need(secure, "secured call")
      yield* call.hangUp
      return { keysDestroyed: yield* keysDestroyed(call) }
    })),

  /** Deletes the customer's account; it then no longer appears in the host's list. */
  deleteCustomer: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      yield* session.rpc.host.deleteCustomer({ customerId })
      const summary = yield* customerSummary
      return { listed: summary === undefined ? "gone" : summary.status }
    })),

  awaitCustomerOffline: () =>
    device.run(Effect.gen(function*() {
      const { session, customerId } = yield* current
      yield* takeEvent(session, (event): event is PresenceChanged =>
        event._tag === "PresenceChanged" && event.account === customerId && !event.online)
    }))
}

export type HostCommands = typeof commands

serveCommands(commands, device.close)
