/** What a customer's app may learn about its own host: the identity keys of the host's devices, for call handshakes. */
import { Effect } from "effect"
import { AccountActors } from "../../actors/AccountActors.js"
import type { DeviceId } from "../../domain/ids.js"
import { CurrentCustomer, CustomerRpcs } from "../contract.js"

export const CustomerHandlersLive = CustomerRpcs.toLayer(Effect.gen(function*() {
  const actors = yield* AccountActors
  return {
    "customer.host": () =>
      Effect.gen(function*() {
        const customer = yield* CurrentCustomer
        const { state } = yield* actors.hosts.read(customer.hostId)
        const devices = state.status === "enrolled" ? Object.entries(state.devices) : []
        return {
          hostId: customer.hostId,
          identityKeys: devices.map(([, device]) => device.publicKey),
          deviceIds: devices.map(([id]) => id as DeviceId)
        }
      })
  }
}))
