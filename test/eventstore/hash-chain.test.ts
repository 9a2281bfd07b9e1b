import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { canonicalJson, eventHash, ZERO_HASH } from "../../src/eventstore/HashChain.js"

describe("canonical JSON", () => {
  it("sorts keys at every depth, drops undefined members, keeps array order, no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: "é\"\n" }, u: undefined })).toBe(
      '{"a":{"c":"é\\"\\n","d":[3,{"y":null,"z":true}]},"b":1}'
    )
    expect(canonicalJson({ list: [undefined, () => 1] })).toBe('{"list":[null,null]}')
    expect(canonicalJson({ at: new Date(Date.UTC(2025, 0, 2)) })).toBe('{"at":"2025-01-02T00:00:00.000Z"}')
    expect(canonicalJson({ "é": 1, "z": 2, "A": 3 })).toBe('{"A":3,"z":2,"é":1}')
  })

  it("refuses what JSON cannot represent faithfully", () => {
    expect(() => canonicalJson({ n: NaN })).toThrow(/non-finite/)
    expect(() => canonicalJson({ n: Infinity })).toThrow(/non-finite/)
    expect(() => canonicalJson({ n: 1n })).toThrow(/bigint/)
    const cyclic: Record<string, unknown> = {}
    cyclic["self"] = cyclic
    expect(() => canonicalJson(cyclic)).toThrow(/cyclic/)
  })
})

describe("event hash", () => {
  // The documented encoding, written out independently of the implementation: logs already written depend on it.
  const documented = (prev: string, stream: string, version: number, type: string, payload: string, ms: number) => {
    const field = (text: string) => {
      const bytes = Buffer.from(text, "utf8")
      const length = Buffer.alloc(4)
      length.writeUInt32BE(bytes.length)
      return Buffer.concat([length, bytes])
    }
    const u32 = Buffer.alloc(4)
    u32.writeUInt32BE(version)
    const u64 = Buffer.alloc(8)
    u64.writeBigUInt64BE(BigInt(ms))
    return createHash("sha256")
      .update(Buffer.concat([Buffer.from("tessera/event/v1"), Buffer.from(prev, "hex"), field(stream), u32, field(type), field(payload), u64]))
      .digest("hex")
  }

  it("follows the documented encoding and chains", () => {
    const first = eventHash(ZERO_HASH, "host-1", 1, "HostEnrolled", '{"a":1}', 1_700_000_000_123)
    const second = eventHash(first, "host-1", 2, "Ünïcode", '{"b":"€"}', 1_700_000_000_124)
    expect(first).toBe(documented(ZERO_HASH, "host-1", 1, "HostEnrolled", '{"a":1}', 1_700_000_000_123))
    expect(second).toBe(documented(first, "host-1", 2, "Ünïcode", '{"b":"€"}', 1_700_000_000_124))
    // A large payload (beyond the reused encoding buffer) hashes the same way.
    const big = JSON.stringify({ x: "y".repeat(10_000) })
    expect(eventHash(second, "host-1", 3, "Big", big, 1)).toBe(documented(second, "host-1", 3, "Big", big, 1))
  })

  it("lengths make the fields unambiguous", () => {
    const a = eventHash(ZERO_HASH, "ab", 1, "c", "{}", 0)
    const b = eventHash(ZERO_HASH, "a", 1, "bc", "{}", 0)
    expect(a).not.toBe(b)
  })
})
