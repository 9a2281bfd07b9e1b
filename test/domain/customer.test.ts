import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  type CustomerCommand,
  type CustomerEvent,
  type CustomerState,
  decideCustomer,
  evolveCustomer,
  initialCustomer
} from "../../src/domain/customer.js"
import type { CommunicationId, CustomerId, HostId } from "../../src/domain/ids.js"

const customerId = "c_AAAAAAAAAAAAAAAAAAAAAA" as CustomerId
const hostId = "h_AAAAAAAAAAAAAAAAAAAAAA" as HostId
const day = 24 * 3600 * 1000

/** Runs commands in order, folding accepted events into the state; returns the final state and every decision. */
const run = (commands: ReadonlyArray<CustomerCommand>) => {
  let state: CustomerState = initialCustomer
  const decisions = commands.map((command) => {
    const decision = decideCustomer(state, command)
    if (Either.isRight(decision)) state = decision.right.reduce(evolveCustomer, state)
    return decision
  })
  return { state, decisions }
}

const create: CustomerCommand = { _tag: "CreateCustomer", customerId, hostId, sealedProfile: "sealed" }
const issue = (codeHash: string, now = 0, validForSeconds = 7 * 24 * 3600): CustomerCommand => ({
  _tag: "IssueActivationCode",
  codeHash,
  now,
  validForSeconds
})
const activate = (codeHash: string, now = 1000): CustomerCommand => ({
  _tag: "Activate",
  codeHash,
  now,
  communicationId: `m_${"B".repeat(22)}` as CommunicationId,
  devicePublicKey: "spki",
  deviceFingerprint: "f".repeat(64)
})
const errorTag = (decision: Either.Either<ReadonlyArray<CustomerEvent>, { _tag: string }>) =>
  Either.isLeft(decision) ? decision.left._tag : "accepted"

describe("customer account", () => {
  it("activates once with a fresh code and records the device", () => {
    const { state, decisions } = run([create, issue("h1"), activate("h1")])
    expect(decisions.map(errorTag)).toEqual(["accepted", "accepted", "accepted"])
    expect(state.status).toBe("active")
    if (state.status !== "absent" && state.status !== "deleted") expect(state.device?.fingerprint).toBe("f".repeat(64))
  })

  it("refuses a used code on a second activation", () => {
    const { decisions } = run([create, issue("h1"), activate("h1"), activate("h1")])
    expect(errorTag(decisions[3]!)).toBe("ActivationCodeUsed")
  })

  it("refuses an expired code, at the instant of expiry", () => {
    const { decisions } = run([create, issue("h1", 0, 60), activate("h1", 60_000)])
    expect(errorTag(decisions[2]!)).toBe("ActivationCodeExpired")
  })

  it("supersedes the previous code when a new one is issued", () => {
    const { decisions } = run([create, issue("h1"), issue("h2"), activate("h1"), activate("h2")])
    expect(Either.getOrThrow(decisions[2]!).map((e) => e._tag)).toEqual([
      "ActivationCodeSuperseded",
      "ActivationCodeIssued"
    ])
    expect(errorTag(decisions[3]!)).toBe("ActivationCodeSuperseded")
    expect(errorTag(decisions[4]!)).toBe("accepted")
  })

  it("refuses an unknown code", () => {
    const { decisions } = run([create, issue("h1"), activate("nope")])
    expect(errorTag(decisions[2]!)).toBe("ActivationCodeInvalid")
  })

  it("caps validity at seven days and refuses nonsense durations", () => {
    const { decisions } = run([create, issue("h1", 0, 7 * 24 * 3600 + 1), issue("h2", 0, 0), issue("h3", 0, 1.5)])
    expect(decisions.slice(1).map(errorTag)).toEqual(["InvalidRequest", "InvalidRequest", "InvalidRequest"])
    const ok = run([create, issue("h1", 0, 7 * 24 * 3600), activate("h1", 7 * day - 1)])
    expect(errorTag(ok.decisions[2]!)).toBe("accepted")
  })

  it("revocation ends the device and any pending code", () => {
    const revoked = run([create, issue("h1"), activate("h1"), { _tag: "RevokeActivation" }])
    expect(revoked.state.status).toBe("revoked")
    if (revoked.state.status === "revoked") expect(revoked.state.device).toBeUndefined()
    const pending = run([create, issue("h1"), { _tag: "RevokeActivation" }, activate("h1")])
    expect(errorTag(pending.decisions[3]!)).toBe("ActivationCodeInvalid")
  })

  it("a new code after revocation re-activates with a new device", () => {
    const { state } = run([create, issue("h1"), activate("h1"), { _tag: "RevokeActivation" }, issue("h2"), activate("h2")])
    expect(state.status).toBe("active")
  })

  it("a deleted account accepts nothing; its codes are dead", () => {
    const { decisions, state } = run([create, issue("h1"), { _tag: "DeleteCustomer" }, activate("h1"), issue("h2")])
    expect(state.status).toBe("deleted")
    expect(errorTag(decisions[3]!)).toBe("ActivationCodeInvalid")
    expect(errorTag(decisions[4]!)).toBe("CustomerNotFound")
  })

  it("an account is created once", () => {
    const { decisions } = run([create, create])
    expect(errorTag(decisions[1]!)).toBe("InvalidRequest")
  })
})
