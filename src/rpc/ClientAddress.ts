/** The peer address of an RPC client, for rate limiting only; provided by the transport. Never log it. */
import { Context } from "effect"

export class ClientAddress extends Context.Tag("tessera/ClientAddress")<ClientAddress, {
  readonly of: (clientId: number) => string
}>() {}
