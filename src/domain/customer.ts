/**
 * The customer account: its events, its state and the pure rules that decide which events a command produces.
 * No I/O here: ids, code hashes and the current time come in with the command.
 */
import { Either, Schema } from "effect"
import { checkCode, codeEnded, codeIssued, type IssuedCodes, noCodes, pendingEnded } from "./codes.js"
import { MAX_CODE_VALIDITY_SECONDS } from "./activationCode.js"
import {
  ActivationCodeExpired,
  ActivationCodeInvalid,
  ActivationCodeSuperseded,
  ActivationCodeUsed,
  type ActivationError,
  CustomerNotFound,
  InvalidRequest
} from "./errors.js"
import { CommunicationId, CustomerId, HostId } from "./ids.js"

/** Host-sealed profile (name, customer number): ciphertext made on the host's device; the server cannot read it. */
export const SealedProfile = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(8192))

export class CustomerAccountCreated extends Schema.TaggedClass<CustomerAccountCreated>()("CustomerAccountCreated", {
  customerId: CustomerId,
  hostId: HostId,
  sealedProfile: SealedProfile
}) {}
export class ActivationCodeIssued extends Schema.TaggedClass<ActivationCodeIssued>()("ActivationCodeIssued", {
  codeHash: Schema.String,
  expiresAt: Schema.Number
}) {}
export class ActivationCodeWasSuperseded extends Schema.TaggedClass<ActivationCodeWasSuperseded>()(
  "ActivationCodeSuperseded",
  { codeHash: Schema.String }
) {}
export class CustomerActivated extends Schema.TaggedClass<CustomerActivated>()("CustomerActivated", {
  codeHash: Schema.String,
  communicationId: CommunicationId,
  devicePublicKey: Schema.String,
  deviceFingerprint: Schema.String
}) {}
export class ActivationRevoked extends Schema.TaggedClass<ActivationRevoked>()("ActivationRevoked", {}) {}
export class CustomerAccountDeleted extends Schema.TaggedClass<CustomerAccountDeleted>()("CustomerAccountDeleted", {}) {}

export const CustomerEvent = Schema.Union(
  CustomerAccountCreated,
  ActivationCodeIssued,
  ActivationCodeWasSuperseded,
  CustomerActivated,
  ActivationRevoked,
  CustomerAccountDeleted
)
export type CustomerEvent = typeof CustomerEvent.Type

export type CustomerStatus = "created" | "code-issued" | "active" | "revoked"

export interface CustomerDevice {
  readonly communicationId: CommunicationId
  readonly publicKey: string
  readonly fingerprint: string
}

/** A deleted account keeps nothing: its data key is destroyed, so its earlier events cannot be read again. */
export type CustomerState =
  | { readonly status: "absent" }
  | { readonly status: "deleted" }
  | {
    readonly status: CustomerStatus
    readonly customerId: CustomerId
    readonly hostId: HostId
    readonly sealedProfile: string
    readonly codes: IssuedCodes
    readonly device: CustomerDevice | undefined
  }

export const initialCustomer: CustomerState = { status: "absent" }

export const evolveCustomer = (state: CustomerState, event: CustomerEvent): CustomerState => {
  if (event._tag === "CustomerAccountCreated") {
    return {
      status: "created",
      customerId: event.customerId,
      hostId: event.hostId,
      sealedProfile: event.sealedProfile,
      codes: noCodes,
      device: undefined
    }
  }
  if (state.status === "absent" || state.status === "deleted") return state
  switch (event._tag) {
    case "ActivationCodeIssued":
      return {
        ...state,
        status: state.status === "active" ? "active" : "code-issued",
        codes: codeIssued(state.codes, event.codeHash, event.expiresAt)
      }
    case "ActivationCodeSuperseded":
      return { ...state, codes: codeEnded(state.codes, event.codeHash, "superseded") }
    case "CustomerActivated":
      return {
        ...state,
        status: "active",
        codes: codeEnded(state.codes, event.codeHash, "used"),
        device: {
          communicationId: event.communicationId,
          publicKey: event.devicePublicKey,
          fingerprint: event.deviceFingerprint
        }
      }
    case "ActivationRevoked":
      return { ...state, status: "revoked", codes: pendingEnded(state.codes, "revoked"), device: undefined }
    case "CustomerAccountDeleted":
      return { status: "deleted" }
  }
}

export type CustomerCommand =
  | { readonly _tag: "CreateCustomer"; readonly customerId: CustomerId; readonly hostId: HostId; readonly sealedProfile: string }
  | { readonly _tag: "IssueActivationCode"; readonly codeHash: string; readonly now: number; readonly validForSeconds: number }
  | {
    readonly _tag: "Activate"
    readonly codeHash: string
    readonly now: number
    readonly communicationId: CommunicationId
    readonly devicePublicKey: string
    readonly deviceFingerprint: string
  }
  | { readonly _tag: "RevokeActivation" }
  | { readonly _tag: "DeleteCustomer" }

export type CustomerDecision = Either.Either<ReadonlyArray<CustomerEvent>, ActivationError | CustomerNotFound | InvalidRequest>

const activationRejections = {
  unknown: () => new ActivationCodeInvalid(),
  expired: () => new ActivationCodeExpired(),
  used: () => new ActivationCodeUsed(),
  superseded: () => new ActivationCodeSuperseded()
} as const

export const decideCustomer = (state: CustomerState, command: CustomerCommand): CustomerDecision => {
  if (command._tag === "CreateCustomer") {
    if (state.status !== "absent") return Either.left(new InvalidRequest({ reason: "customer account exists" }))
    return Either.right([new CustomerAccountCreated(command)])
  }
  if (state.status === "absent" || state.status === "deleted") {
    return command._tag === "Activate" ? Either.left(new ActivationCodeInvalid()) : Either.left(new CustomerNotFound())
  }
  switch (command._tag) {
    case "IssueActivationCode": {
      if (!Number.isInteger(command.validForSeconds) || command.validForSeconds < 1 ||
        command.validForSeconds > MAX_CODE_VALIDITY_SECONDS) {
        return Either.left(new InvalidRequest({ reason: "a code is valid for 1 second to 7 days" }))
      }
      const issued = new ActivationCodeIssued({
        codeHash: command.codeHash,
        expiresAt: command.now + command.validForSeconds * 1000
      })
      const pending = state.codes.pending
      return Either.right(pending ? [new ActivationCodeWasSuperseded({ codeHash: pending.codeHash }), issued] : [issued])
    }
    case "Activate": {
      const rejection = checkCode(state.codes, command.codeHash, command.now)
      if (rejection !== undefined) return Either.left(activationRejections[rejection]())
      return Either.right([
        new CustomerActivated({
          codeHash: command.codeHash,
          communicationId: command.communicationId,
          devicePublicKey: command.devicePublicKey,
          deviceFingerprint: command.deviceFingerprint
        })
      ])
    }
    case "RevokeActivation":
      if (state.status !== "active" && state.status !== "code-issued") {
        return Either.left(new InvalidRequest({ reason: "nothing to revoke" }))
      }
      return Either.right([new ActivationRevoked()])
    case "DeleteCustomer":
      return Either.right([new CustomerAccountDeleted()])
  }
}
