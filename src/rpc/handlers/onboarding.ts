/**
 * Redeeming one-time codes without an account: a host device enrolls, a customer device activates. Every failed
 * redemption counts against the client's address; past the limit, the address is refused for a while.
 */
import { Cause, Effect, Exit, Option } from "effect"
import { Activation } from "../../actors/Activation.js"
import { Enrollment } from "../../actors/Enrollment.js"
import { AttemptLimiter } from "../AttemptLimiter.js"
import { ClientAddress } from "../ClientAddress.js"
import { OnboardingRpcs } from "../contract.js"

const codeRejections = new Set([
  "EnrollmentCodeInvalid",
  "ActivationCodeInvalid",
  "ActivationCodeExpired",
  "ActivationCodeUsed",
  "ActivationCodeSuperseded"
])

export const OnboardingHandlersLive = OnboardingRpcs.toLayer(Effect.gen(function*() {
  const enrollment = yield* Enrollment
  const activation = yield* Activation
  const limiter = yield* AttemptLimiter
  const addresses = yield* ClientAddress

  const limited = <A, E extends { readonly _tag: string }>(clientId: number, redeem: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const address = addresses.of(clientId)
      yield* limiter.reserve(address)
      return yield* redeem.pipe(
        Effect.onExit((exit) => {
          const wrongCode = Exit.isFailure(exit) && Option.exists(Cause.failureOption(exit.cause), (e) => codeRejections.has(e._tag))
          return wrongCode ? Effect.void : limiter.refund(address)
        })
      )
    })

  return {
    "host.enrollDevice": ({ devicePublicKey, enrollmentCode }, { clientId }) =>
      limited(clientId, enrollment.enrollDevice(enrollmentCode, devicePublicKey)),
    "customer.activate": ({ activationCode, devicePublicKey }, { clientId }) =>
      limited(clientId, activation.activate(activationCode, devicePublicKey))
  }
}))
