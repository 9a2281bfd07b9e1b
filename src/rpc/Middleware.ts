/**
 * The authentication middleware of the contract: an RPC behind it runs only on a connection that has proved
 * possession of a device key (session.authenticate), and host-only or customer-only RPCs only for that kind.
 */
import { Effect, Layer, Option } from "effect"
import type { Principal } from "../actors/ConfigFiles.js"
import { Sessions } from "../actors/Sessions.js"
import { NotPermitted, Unauthenticated } from "../domain/errors.js"
import { Authenticated, CustomerDevice, HostDevice } from "./contract.js"

const principalOf = (kind?: Principal["kind"]) =>
  Effect.map(Sessions, (sessions) => ({ clientId }: { readonly clientId: number }) =>
    Effect.flatMap(sessions.principal(clientId), (principal): Effect.Effect<Principal, Unauthenticated | NotPermitted> => {
      if (Option.isNone(principal)) return Effect.fail(new Unauthenticated())
      if (kind !== undefined && principal.value.kind !== kind) return Effect.fail(new NotPermitted())
      return Effect.succeed(principal.value)
    }))

type HostPrincipal = Extract<Principal, { kind: "host" }>
type CustomerPrincipal = Extract<Principal, { kind: "customer" }>

export const MiddlewareLive = Layer.mergeAll(
  Layer.effect(Authenticated, principalOf()),
  Layer.effect(HostDevice, Effect.map(principalOf("host"), (f) => (options) => f(options) as Effect.Effect<HostPrincipal, Unauthenticated | NotPermitted>)),
  Layer.effect(
    CustomerDevice,
    Effect.map(principalOf("customer"), (f) => (options) => f(options) as Effect.Effect<CustomerPrincipal, Unauthenticated | NotPermitted>)
  )
)
