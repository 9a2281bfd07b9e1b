import { describe, expect, it } from "@effect/vitest"
import { CODE_ENTROPY_BITS, formatActivationCode, normalizeActivationCode } from "../../src/domain/activationCode.js"

describe("activation code format", () => {
  it("carries at least 60 bits in three groups of four Crockford symbols", () => {
    expect(CODE_ENTROPY_BITS).toBeGreaterThanOrEqual(60)
    const code = formatActivationCode(crypto.getRandomValues(new Uint8Array(8)))
    expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/)
  })

  it("uses all 60 bits: different random input gives a different code", () => {
    const a = new Uint8Array(8)
    const b = new Uint8Array(8)
    b[7] = 0x10 // the lowest bit that is kept (the last 4 bits are dropped)
    expect(formatActivationCode(a)).not.toBe(formatActivationCode(b))
    const c = new Uint8Array(8)
    c[7] = 0x0f
    expect(formatActivationCode(a)).toBe(formatActivationCode(c))
  })

  it("forgives case, spaces, dashes and look-alike letters", () => {
    expect(normalizeActivationCode(" abcd-efgh-jk1o ")).toBe("ABCDEFGHJK10")
    expect(normalizeActivationCode("ABCDEFGHJKLO")).toBe("ABCDEFGHJK10")
  })

  it("rejects what cannot be a code", () => {
    expect(normalizeActivationCode("ABCD-EFGH-JK")).toBeUndefined()
    expect(normalizeActivationCode("ABCD-EFGH-JKUU")).toBeUndefined()
    expect(normalizeActivationCode("ABCD-EFGH-JK1!")).toBeUndefined()
  })
})
