/**
 * Turns domain events into stored events and back. Every field that could link a customer to a host, or identify a
 * device, is sealed under the account's data key before it reaches the database; once the account is deleted and
 * its key destroyed, those fields cannot be opened again (crypto-shredding).
 */
import { Effect, Option, Schema } from "effect"
import { CustomerEvent } from "../domain/customer.js"
import { HostEvent } from "../domain/host.js"
import { DataKeys } from "../eventstore/DataKeys.js"
import type { NewEvent, StoredEvent } from "../eventstore/EventStore.js"

const sealedFields: Readonly<Record<string, ReadonlyArray<string>>> = {
  CustomerAccountCreated: ["hostId", "sealedProfile"],
  CustomerActivated: ["communicationId", "devicePublicKey", "deviceFingerprint"],
  CustomerAccountAdded: ["customerId"],
  CustomerAccountRemoved: ["customerId"],
  HostDeviceEnrolled: ["devicePublicKey", "deviceFingerprint"]
}

const makeCodec = <A extends { readonly _tag: string }, I>(schema: Schema.Schema<A, I>) => {
  const encodeEvent = Schema.encodeSync(schema)
  const decodeEvent = Schema.decodeUnknownSync(schema)

  const encode = (streamId: string, event: A): Effect.Effect<NewEvent, never, DataKeys> =>
    Effect.gen(function*() {
      const keys = yield* DataKeys
      const { _tag, ...fields } = encodeEvent(event) as Record<string, unknown> & { _tag: string }
      for (const field of sealedFields[_tag] ?? []) {
        fields[field] = yield* keys.seal(streamId, String(fields[field]))
      }
      return { type: _tag, payload: fields }
    })

  /** None when the account's data key was destroyed. A stored event that does not decode is a defect. */
  const decode = (stored: StoredEvent): Effect.Effect<Option.Option<A>, never, DataKeys> =>
    Effect.gen(function*() {
      const keys = yield* DataKeys
      const fields: Record<string, unknown> = { ...stored.payload, _tag: stored.type }
      for (const field of sealedFields[stored.type] ?? []) {
        const opened = yield* keys.open(stored.streamId, String(fields[field]))
        if (Option.isNone(opened)) return Option.none()
        fields[field] = opened.value
      }
      return Option.some(decodeEvent(fields))
    })

  return { encode, decode }
}

export const customerCodec = makeCodec(CustomerEvent)
export const hostCodec = makeCodec(HostEvent)
