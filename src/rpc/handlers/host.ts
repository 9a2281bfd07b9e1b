/** The host console's customer management, always within the calling device's own host account. */
import { Effect } from "effect"
import { CustomerAccounts } from "../../actors/CustomerAccounts.js"
import { Sessions } from "../../actors/Sessions.js"
import { CurrentHost, CustomerSummary, HostRpcs } from "../contract.js"

export const HostHandlersLive = HostRpcs.toLayer(Effect.gen(function*() {
  const customers = yield* CustomerAccounts
  const sessions = yield* Sessions
  return {
    "host.createCustomer": ({ sealedProfile }) =>
      Effect.flatMap(CurrentHost, (host) => customers.create(host.hostId, sealedProfile)).pipe(
        Effect.map((customerId) => ({ customerId }))
      ),
    "host.listCustomers": () =>
      Effect.gen(function*() {
        const host = yield* CurrentHost
        const all = yield* customers.list(host.hostId)
        return yield* Effect.forEach(all, (c) =>
          Effect.map(sessions.isOnline(c.customerId), (online) =>
            new CustomerSummary({
              customerId: c.customerId,
              status: c.status,
              sealedProfile: c.sealedProfile,
              ...(c.codeExpiresAt === undefined ? {} : { codeExpiresAt: c.codeExpiresAt }),
              ...(c.devicePublicKey === undefined ? {} : { devicePublicKey: c.devicePublicKey }),
              ...(c.deviceFingerprint === undefined ? {} : { deviceFingerprint: c.deviceFingerprint }),
              online
            })))
      }),
    "host.issueActivationCode": ({ customerId, validForSeconds }) =>
      Effect.flatMap(CurrentHost, (host) => customers.issueActivationCode(host.hostId, customerId, validForSeconds)),
    "host.revokeActivation": ({ customerId }) =>
      Effect.flatMap(CurrentHost, (host) => customers.revokeActivation(host.hostId, customerId)),
    "host.deleteCustomer": ({ customerId }) =>
      Effect.flatMap(CurrentHost, (host) => customers.delete(host.hostId, customerId))
  }
}))
