/**
 * Opaque identifiers. They are random, carry no meaning and never contain personal data; the prefix only says which
 * kind of thing they name, so that a host id can never be passed where a customer id is expected.
 */
import { Schema } from "effect"

const opaque = (prefix: string) => Schema.String.pipe(Schema.pattern(new RegExp(`^${prefix}_[0-9A-Za-z_-]{22}$`)))

export const HostId = opaque("h").pipe(Schema.brand("HostId"))
export type HostId = typeof HostId.Type

export const CustomerId = opaque("c").pipe(Schema.brand("CustomerId"))
export type CustomerId = typeof CustomerId.Type

export const DeviceId = opaque("d").pipe(Schema.brand("DeviceId"))
export type DeviceId = typeof DeviceId.Type

/** The customer's address on the server, carried in its config file; stored only encrypted. */
export const CommunicationId = opaque("m").pipe(Schema.brand("CommunicationId"))
export type CommunicationId = typeof CommunicationId.Type

export const CallId = opaque("k").pipe(Schema.brand("CallId"))
export type CallId = typeof CallId.Type

/** Either party of a call: a host account or a customer account. */
export const AccountId = Schema.Union(HostId, CustomerId)
export type AccountId = typeof AccountId.Type

export const isHostId = (id: string): id is HostId => id.startsWith("h_")
export const isCustomerId = (id: string): id is CustomerId => id.startsWith("c_")
