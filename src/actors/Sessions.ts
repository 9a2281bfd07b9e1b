/**
 * Live sessions: one per WebSocket connection, in memory only. A session gets a fresh challenge, becomes
 * authenticated as a host device or a customer device, subscribes to its event stream and says whether its app is
 * open and ready. From that the session registry derives presence and delivers it to the counterparts: a host's
 * devices see their own customers, a customer sees its own host, nobody sees anybody else.
 */
import { Context, Effect, Layer, type Mailbox, Option } from "effect"
import { toBase64Url } from "../crypto/bytes.js"
import type { AccountId, CustomerId, HostId } from "../domain/ids.js"
import { EventsStarted, type LiveEvent, PresenceChanged } from "../domain/liveEvents.js"
import type { Principal } from "./ConfigFiles.js"
import { EventQueue } from "./EventQueue.js"

/** A device that does not read its events falls this far behind before the server drops it. */
const EVENT_QUEUE_CAPACITY = 1024

/** Closes a client's connection; provided by the transport. */
export class ConnectionControl extends Context.Tag("tessera/ConnectionControl")<ConnectionControl, {
  readonly close: (clientId: number, code: number, reason: string) => Effect.Effect<void>
  /** The connection authenticated: it may stay open past the transport's admission deadline. */
  readonly admit: (clientId: number) => Effect.Effect<void>
}>() {}

export const CLOSE_ACCESS_REVOKED = 4001
export const CLOSE_TOO_SLOW = 4008

interface Session {
  nonce: string | undefined
  principal: Principal | undefined
  ready: boolean
  /** The events for this connection's subscription. Not a Stream nor a Mailbox: far less per idle session. */
  events: EventQueue<LiveEvent> | undefined
}

export const accountOf = (principal: Principal): AccountId =>
  principal.kind === "host" ? principal.hostId : principal.customerId

export class Sessions extends Context.Tag("tessera/Sessions")<Sessions, {
  readonly issueChallenge: (clientId: number) => Effect.Effect<string>
  /** The pending challenge of this connection, consumed: a nonce answers at most one authentication attempt. */
  readonly takeChallenge: (clientId: number) => Effect.Effect<Option.Option<string>>
  readonly authenticate: (clientId: number, principal: Principal) => Effect.Effect<void>
  readonly principal: (clientId: number) => Effect.Effect<Option.Option<Principal>>
  readonly subscribe: (clientId: number) => Effect.Effect<Mailbox.ReadonlyMailbox<LiveEvent>>
  readonly setReady: (clientId: number, ready: boolean) => Effect.Effect<void>
  readonly remove: (clientId: number) => Effect.Effect<void>
  /** Takes the account away from a connection at once (it goes offline, no RPC of it is served); events still flow. */
  readonly revoke: (clientId: number) => Effect.Effect<void>
  /** Delivers to every subscribed session of an account; `readyOnly` for rings. Returns how many got it. */
  readonly deliverToAccount: (account: AccountId, event: LiveEvent, options?: { readonly readyOnly?: boolean }) => Effect.Effect<number>
  readonly deliverToClient: (clientId: number, event: LiveEvent) => Effect.Effect<boolean>
  readonly readyClientsOf: (account: AccountId) => Effect.Effect<ReadonlyArray<number>>
  readonly clientsOf: (account: AccountId) => Effect.Effect<ReadonlyArray<number>>
  readonly isOnline: (account: AccountId) => Effect.Effect<boolean>
  readonly counts: Effect.Effect<{ readonly connections: number; readonly authenticated: number }>
}>() {}

export const SessionsLive = Layer.effect(
  Sessions,
  Effect.gen(function*() {
    const control = yield* ConnectionControl
    const sessions = new Map<number, Session>()
    const byAccount = new Map<AccountId, Set<number>>()
    /** Customer sessions by their host, for presence fan-out. */
    const customersOfHost = new Map<HostId, Set<number>>()

    const sessionOf = (clientId: number): Session => {
      let session = sessions.get(clientId)
      if (!session) {
        session = { nonce: undefined, principal: undefined, ready: false, events: undefined }
        sessions.set(clientId, session)
      }
      return session
    }
    const addTo = <K>(map: Map<K, Set<number>>, key: K, clientId: number) => {
      const set = map.get(key) ?? new Set<number>()
      set.add(clientId)
      map.set(key, set)
    }
    const removeFrom = <K>(map: Map<K, Set<number>>, key: K, clientId: number) => {
      const set = map.get(key)
      if (!set) return
      set.delete(clientId)
      if (set.size === 0) map.delete(key)
    }

    const online = (account: AccountId) => {
      for (const id of byAccount.get(account) ?? []) if (sessions.get(id)?.ready) return true
      return false
    }

    const deliverToClient = (clientId: number, event: LiveEvent) =>
      Effect.suspend(() => {
        const events = sessions.get(clientId)?.events
        if (!events) return Effect.succeed(false)
        if (events.unsafeOffer(event)) return Effect.succeed(true)
        // Refused while still open means full: this device does not read its events.
        if (Option.isNone(events.unsafeSize())) return Effect.succeed(false)
        return Effect.as(control.close(clientId, CLOSE_TOO_SLOW, "event queue overflow"), false)
      })

    const deliverToMany = (clientIds: Iterable<number>, event: LiveEvent) =>
      Effect.reduce([...clientIds], 0, (n, id) => Effect.map(deliverToClient(id, event), (ok) => (ok ? n + 1 : n)))

    /** Tells the counterparts of an account whether it is online now. */
    const announce = (principal: Principal, wasOnline: boolean) =>
      Effect.suspend(() => {
        const account = accountOf(principal)
        const isOnline = online(account)
        if (isOnline === wasOnline) return Effect.void
        const event = new PresenceChanged({ account, online: isOnline })
        const audience = principal.kind === "host"
          ? customersOfHost.get(principal.hostId) ?? new Set<number>()
          : byAccount.get(principal.hostId) ?? new Set<number>()
        return Effect.asVoid(deliverToMany(audience, event))
      })

    const snapshot = (principal: Principal): ReadonlyArray<LiveEvent> => {
      if (principal.kind === "customer") {
        return [new PresenceChanged({ account: principal.hostId, online: online(principal.hostId) })]
      }
      const seen = new Set<CustomerId>()
      for (const id of customersOfHost.get(principal.hostId) ?? []) {
        const p = sessions.get(id)?.principal
        if (p?.kind === "customer" && !seen.has(p.customerId) && online(p.customerId)) seen.add(p.customerId)
      }
      return [...seen].map((account) => new PresenceChanged({ account, online: true }))
    }

    /** Unbinds a session from its account and tells the counterparts if that took the account offline. */
    const detach = (clientId: number, session: Session) =>
      Effect.suspend(() => {
        const principal = session.principal
        if (!principal) return Effect.void
        const account = accountOf(principal)
        const wasOnline = online(account) || session.ready
        session.principal = undefined
        session.ready = false
        removeFrom(byAccount, account, clientId)
        if (principal.kind === "customer") removeFrom(customersOfHost, principal.hostId, clientId)
        return announce(principal, wasOnline)
      })

    return {
      issueChallenge: (clientId) =>
        Effect.sync(() => {
          const nonce = toBase64Url(crypto.getRandomValues(new Uint8Array(32)))
          sessionOf(clientId).nonce = nonce
          return nonce
        }),
      takeChallenge: (clientId) =>
        Effect.sync(() => {
          const session = sessions.get(clientId)
          const nonce = session?.nonce
          if (session) session.nonce = undefined
          return Option.fromNullable(nonce)
        }),
      authenticate: (clientId, principal) =>
        Effect.suspend(() => {
          const session = sessionOf(clientId)
          if (session.principal) return Effect.void
          session.principal = principal
          addTo(byAccount, accountOf(principal), clientId)
          if (principal.kind === "customer") addTo(customersOfHost, principal.hostId, clientId)
          return control.admit(clientId)
        }),
      principal: (clientId) => Effect.sync(() => Option.fromNullable(sessions.get(clientId)?.principal)),
      subscribe: (clientId) =>
        Effect.sync(() => {
          const session = sessionOf(clientId)
          session.events?.unsafeEnd()
          const events = new EventQueue<LiveEvent>(EVENT_QUEUE_CAPACITY)
          session.events = events
          events.unsafeOffer(new EventsStarted())
          if (session.principal) for (const event of snapshot(session.principal)) events.unsafeOffer(event)
          return events satisfies Mailbox.ReadonlyMailbox<LiveEvent>
        }),
      setReady: (clientId, ready) =>
        Effect.suspend(() => {
          const session = sessions.get(clientId)
          if (!session?.principal || session.ready === ready) return Effect.void
          const wasOnline = online(accountOf(session.principal))
          session.ready = ready
          return announce(session.principal, wasOnline)
        }),
      remove: (clientId) =>
        Effect.suspend(() => {
          const session = sessions.get(clientId)
          if (!session) return Effect.void
          sessions.delete(clientId)
          const events = session.events
          return Effect.zipRight(detach(clientId, session), events ? events.end : Effect.void)
        }),
      revoke: (clientId) =>
        Effect.suspend(() => {
          const session = sessions.get(clientId)
          return session ? detach(clientId, session) : Effect.void
        }),
      deliverToAccount: (account, event, options) =>
        Effect.suspend(() => {
          const targets = [...(byAccount.get(account) ?? [])].filter((id) => !options?.readyOnly || sessions.get(id)?.ready)
          return deliverToMany(targets, event)
        }),
      deliverToClient,
      readyClientsOf: (account) => Effect.sync(() => [...(byAccount.get(account) ?? [])].filter((id) => sessions.get(id)?.ready)),
      clientsOf: (account) => Effect.sync(() => [...(byAccount.get(account) ?? [])]),
      isOnline: (account) => Effect.sync(() => online(account)),
      counts: Effect.sync(() => {
        let authenticated = 0
        for (const s of sessions.values()) if (s.principal) authenticated++
        return { connections: sessions.size, authenticated }
      })
    }
  })
)
