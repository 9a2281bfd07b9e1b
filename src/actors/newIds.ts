/** Fresh random identifiers and codes: 128 bits for ids, 60 bits for human-typable codes. */
import { Effect } from "effect"
import { formatActivationCode } from "../domain/activationCode.js"
import type { CallId, CommunicationId, CustomerId, DeviceId, HostId } from "../domain/ids.js"
import { toBase64Url } from "../crypto/bytes.js"

const randomId = (prefix: string) => Effect.sync(() => `${prefix}_${toBase64Url(crypto.getRandomValues(new Uint8Array(16)))}`)

export const newHostId = randomId("h") as Effect.Effect<HostId>
export const newCustomerId = randomId("c") as Effect.Effect<CustomerId>
export const newDeviceId = randomId("d") as Effect.Effect<DeviceId>
export const newCommunicationId = randomId("m") as Effect.Effect<CommunicationId>
export const newCallId = randomId("k") as Effect.Effect<CallId>
export const newCode = Effect.sync(() => formatActivationCode(crypto.getRandomValues(new Uint8Array(8))))
