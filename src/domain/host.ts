/**
 * The host account (a practice): its enrolled devices, its device-enrollment codes and the list of its customer
 * accounts. Pure rules, as for the customer account.
 */
import { Either, Schema } from "effect"
import { MAX_CODE_VALIDITY_SECONDS } from "./activationCode.js"
import { checkCode, codeEnded, codeIssued, type IssuedCodes, noCodes } from "./codes.js"
import { CustomerNotFound, EnrollmentCodeInvalid, InvalidRequest } from "./errors.js"
import { CustomerId, DeviceId, HostId } from "./ids.js"

export class HostEnrolled extends Schema.TaggedClass<HostEnrolled>()("HostEnrolled", { hostId: HostId }) {}
export class HostEnrollmentCodeIssued extends Schema.TaggedClass<HostEnrollmentCodeIssued>()(
  "HostEnrollmentCodeIssued",
  { codeHash: Schema.String, expiresAt: Schema.Number }
) {}
export class HostEnrollmentCodeSuperseded extends Schema.TaggedClass<HostEnrollmentCodeSuperseded>()(
  "HostEnrollmentCodeSuperseded",
  { codeHash: Schema.String }
) {}
export class HostDeviceEnrolled extends Schema.TaggedClass<HostDeviceEnrolled>()("HostDeviceEnrolled", {
  codeHash: Schema.String,
  deviceId: DeviceId,
  devicePublicKey: Schema.String,
  deviceFingerprint: Schema.String
}) {}
export class CustomerAccountAdded extends Schema.TaggedClass<CustomerAccountAdded>()("CustomerAccountAdded", {
  customerId: CustomerId
}) {}
export class CustomerAccountRemoved extends Schema.TaggedClass<CustomerAccountRemoved>()("CustomerAccountRemoved", {
  customerId: CustomerId
}) {}

export const HostEvent = Schema.Union(
  HostEnrolled,
  HostEnrollmentCodeIssued,
  HostEnrollmentCodeSuperseded,
  HostDeviceEnrolled,
  CustomerAccountAdded,
  CustomerAccountRemoved
)
export type HostEvent = typeof HostEvent.Type

export interface HostDevice {
  readonly publicKey: string
  readonly fingerprint: string
}

export type HostState =
  | { readonly status: "absent" }
  | {
    readonly status: "enrolled"
    readonly hostId: HostId
    readonly codes: IssuedCodes
    readonly devices: Readonly<Record<DeviceId, HostDevice>>
    readonly customers: ReadonlyArray<CustomerId>
  }

export const initialHost: HostState = { status: "absent" }

export const evolveHost = (state: HostState, event: HostEvent): HostState => {
  if (event._tag === "HostEnrolled") {
    return { status: "enrolled", hostId: event.hostId, codes: noCodes, devices: {}, customers: [] }
  }
  if (state.status === "absent") return state
  switch (event._tag) {
    case "HostEnrollmentCodeIssued":
      return { ...state, codes: codeIssued(state.codes, event.codeHash, event.expiresAt) }
    case "HostEnrollmentCodeSuperseded":
      return { ...state, codes: codeEnded(state.codes, event.codeHash, "superseded") }
    case "HostDeviceEnrolled":
      return {
        ...state,
        codes: codeEnded(state.codes, event.codeHash, "used"),
        devices: { ...state.devices, [event.deviceId]: { publicKey: event.devicePublicKey, fingerprint: event.deviceFingerprint } }
      }
    case "CustomerAccountAdded":
      return { ...state, customers: [...state.customers, event.customerId] }
    case "CustomerAccountRemoved":
      return { ...state, customers: state.customers.filter((c) => c !== event.customerId) }
  }
}

export type HostCommand =
  | { readonly _tag: "EnrollHost"; readonly hostId: HostId }
  | { readonly _tag: "IssueEnrollmentCode"; readonly codeHash: string; readonly now: number; readonly validForSeconds: number }
  | {
    readonly _tag: "EnrollDevice"
    readonly codeHash: string
    readonly now: number
    readonly deviceId: DeviceId
    readonly devicePublicKey: string
    readonly deviceFingerprint: string
  }
  | { readonly _tag: "AddCustomer"; readonly customerId: CustomerId }
  | { readonly _tag: "RemoveCustomer"; readonly customerId: CustomerId }

export type HostDecision = Either.Either<
  ReadonlyArray<HostEvent>,
  EnrollmentCodeInvalid | InvalidRequest | CustomerNotFound
>

export const decideHost = (state: HostState, command: HostCommand): HostDecision => {
  if (command._tag === "EnrollHost") {
    if (state.status !== "absent") return Either.left(new InvalidRequest({ reason: "host exists" }))
    return Either.right([new HostEnrolled({ hostId: command.hostId })])
  }
  if (state.status === "absent") {
    return command._tag === "EnrollDevice"
      ? Either.left(new EnrollmentCodeInvalid({ reason: "unknown" }))
      : Either.left(new InvalidRequest({ reason: "no such host" }))
  }
  switch (command._tag) {
    case "IssueEnrollmentCode": {
      if (!Number.isInteger(command.validForSeconds) || command.validForSeconds < 1 ||
        command.validForSeconds > MAX_CODE_VALIDITY_SECONDS) {
        return Either.left(new InvalidRequest({ reason: "a code is valid for 1 second to 7 days" }))
      }
      const issued = new HostEnrollmentCodeIssued({
        codeHash: command.codeHash,
        expiresAt: command.now + command.validForSeconds * 1000
      })
      const pending = state.codes.pending
      return Either.right(pending ? [new HostEnrollmentCodeSuperseded({ codeHash: pending.codeHash }), issued] : [issued])
    }
    case "EnrollDevice": {
      const rejection = checkCode(state.codes, command.codeHash, command.now)
      if (rejection !== undefined) return Either.left(new EnrollmentCodeInvalid({ reason: rejection }))
      return Either.right([
        new HostDeviceEnrolled({
          codeHash: command.codeHash,
          deviceId: command.deviceId,
          devicePublicKey: command.devicePublicKey,
          deviceFingerprint: command.deviceFingerprint
        })
      ])
    }
    case "AddCustomer":
      if (state.customers.includes(command.customerId)) return Either.left(new InvalidRequest({ reason: "customer exists" }))
      return Either.right([new CustomerAccountAdded({ customerId: command.customerId })])
    case "RemoveCustomer":
      if (!state.customers.includes(command.customerId)) return Either.left(new CustomerNotFound())
      return Either.right([new CustomerAccountRemoved({ customerId: command.customerId })])
  }
}
