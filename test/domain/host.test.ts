import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { decideHost, evolveHost, type HostCommand, type HostState, initialHost } from "../../src/domain/host.js"
import type { CustomerId, DeviceId, HostId } from "../../src/domain/ids.js"

const hostId = "h_AAAAAAAAAAAAAAAAAAAAAA" as HostId
const run = (commands: ReadonlyArray<HostCommand>) => {
  let state: HostState = initialHost
  const outcomes = commands.map((command) => {
    const decision = decideHost(state, command)
    if (Either.isRight(decision)) state = decision.right.reduce(evolveHost, state)
    return Either.isLeft(decision) ? ("reason" in decision.left ? `${decision.left._tag}:${decision.left.reason}` : decision.left._tag) : "accepted"
  })
  return { state, outcomes }
}
const enrollDevice = (codeHash: string, now = 1): HostCommand => ({
  _tag: "EnrollDevice",
  codeHash,
  now,
  deviceId: `d_${"A".repeat(22)}` as DeviceId,
  devicePublicKey: "spki",
  deviceFingerprint: "0".repeat(64)
})

describe("host account", () => {
  it("enrolls a device once per enrollment code", () => {
    const { state, outcomes } = run([
      { _tag: "EnrollHost", hostId },
      { _tag: "IssueEnrollmentCode", codeHash: "e1", now: 0, validForSeconds: 3600 },
      enrollDevice("e1"),
      enrollDevice("e1")
    ])
    expect(outcomes).toEqual(["accepted", "accepted", "accepted", "EnrollmentCodeInvalid:used"])
    if (state.status === "enrolled") expect(Object.keys(state.devices)).toHaveLength(1)
  })

  it("refuses expired, superseded and unknown enrollment codes", () => {
    const { outcomes } = run([
      { _tag: "EnrollHost", hostId },
      { _tag: "IssueEnrollmentCode", codeHash: "e1", now: 0, validForSeconds: 60 },
      { _tag: "IssueEnrollmentCode", codeHash: "e2", now: 0, validForSeconds: 60 },
      enrollDevice("e1"),
      enrollDevice("e2", 60_000),
      enrollDevice("zz")
    ])
    expect(outcomes.slice(3)).toEqual([
      "EnrollmentCodeInvalid:superseded",
      "EnrollmentCodeInvalid:expired",
      "EnrollmentCodeInvalid:unknown"
    ])
  })

  it("keeps the list of its customers", () => {
    const c1 = `c_${"1".repeat(22)}` as CustomerId
    const c2 = `c_${"2".repeat(22)}` as CustomerId
    const { state, outcomes } = run([
      { _tag: "EnrollHost", hostId },
      { _tag: "AddCustomer", customerId: c1 },
      { _tag: "AddCustomer", customerId: c2 },
      { _tag: "RemoveCustomer", customerId: c1 },
      { _tag: "RemoveCustomer", customerId: c1 }
    ])
    expect(outcomes[4]).toBe("CustomerNotFound")
    if (state.status === "enrolled") expect(state.customers).toEqual([c2])
  })
})
