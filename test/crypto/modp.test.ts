/** MODP groups and the two arithmetic backends held against each other and against OpenSSL's named groups. */
import { describe, expect, it } from "@effect/vitest"
import { getDiffieHellman } from "node:crypto"
import { bigIntToBytes, bytesToBigInt, toHex } from "../../src/crypto/bytes.js"
import { bigintModpBackend, jacobiSymbol, modPowBigInt } from "../../src/crypto/modp-bigint.js"
import { nodeModpBackend } from "../../src/crypto/modp-node.js"
import {
  computeSharedSecret,
  defaultModpBackend,
  destroyEphemeral,
  generateEphemeral,
  MODP_GROUP_14,
  MODP_GROUP_15,
  validatePeerValue,
  type ModpGroup
} from "../../src/crypto/modp.js"

const node = nodeModpBackend()!
const groups: ReadonlyArray<ModpGroup> = [MODP_GROUP_15, MODP_GROUP_14]

const rejection = (f: () => void): string => {
  try {
    f()
    return "accepted"
  } catch (e) {
    return `${(e as { _tag?: string })._tag}: ${(e as { reason?: string }).reason}`
  }
}

describe("MODP groups", () => {
  it("are RFC 3526 groups 15 and 14 exactly as OpenSSL knows them", () => {
    expect(toHex(MODP_GROUP_15.pBytes)).toBe(getDiffieHellman("modp15").getPrime("hex"))
    expect(toHex(MODP_GROUP_14.pBytes)).toBe(getDiffieHellman("modp14").getPrime("hex"))
    expect([MODP_GROUP_15.bits, MODP_GROUP_14.bits]).toEqual([3072, 2048])
    for (const g of groups) expect(g.p).toBe(2n * g.q + 1n)
  })

  it("Node picks node:crypto by default", () => {
    expect(defaultModpBackend().name).toBe("node-crypto")
  })

  it("BigInt and node:crypto agree on public values and shared secrets, in both directions", () => {
    for (const g of groups) {
      const a = generateEphemeral(g, bigintModpBackend)
      const b = generateEphemeral(g, node)
      expect(toHex(a.publicValue)).toBe(toHex(node.modPow(g, Uint8Array.of(2), a.exponent)))
      expect(toHex(b.publicValue)).toBe(toHex(bigintModpBackend.modPow(g, Uint8Array.of(2), b.exponent)))
      const ab = computeSharedSecret(a, b.publicValue, bigintModpBackend)
      expect(ab).toHaveLength(g.byteLength)
      expect(toHex(computeSharedSecret(b, a.publicValue, node))).toBe(toHex(ab))
      expect(toHex(computeSharedSecret(a, b.publicValue, node))).toBe(toHex(ab))
      expect(a.exponent).toHaveLength(32)
      destroyEphemeral(a)
      expect(a.exponent.every((x) => x === 0)).toBe(true)
    }
  })

  it("sliding-window exponentiation matches square-and-multiply", () => {
    const plain = (b: bigint, e: bigint, m: bigint) => {
      let r = 1n
      for (let x = b % m, k = e; k > 0n; k >>= 1n, x = (x * x) % m) if (k & 1n) r = (r * x) % m
      return r
    }
    const p = MODP_GROUP_14.p
    for (const [b, e] of [[3n, 0n], [3n, 1n], [5n, 0xffn], [7n, (1n << 256n) - 12345n], [p - 5n, 0x8000_0000_0001n]] as const)
      expect(modPowBigInt(b, e, p)).toBe(plain(b, e, p))
  })

  it("both subgroup tests equal y^q == 1 (Euler's criterion) on residues and non-residues", () => {
    for (const g of groups) {
      const samples = [2n, 3n, 4n, 5n, 6n, 7n, g.p - 2n, g.p - 3n, bytesToBigInt(generateEphemeral(g).publicValue)]
      for (const y of samples) {
        const inSubgroup = modPowBigInt(y, g.q, g.p) === 1n
        const bytes = bigIntToBytes(y, g.byteLength)
        expect(node.inPrimeOrderSubgroup(g, bytes)).toBe(inSubgroup)
        expect(bigintModpBackend.inPrimeOrderSubgroup(g, bytes)).toBe(inSubgroup)
        expect(jacobiSymbol(y, g.p)).toBe(inSubgroup ? 1 : -1)
      }
    }
  })

  it("refuses peer values outside the prime-order subgroup with InvalidPeerValue, in both backends", () => {
    for (const g of groups) {
      for (const backend of [node, bigintModpBackend]) {
        const at = (y: bigint) => rejection(() => validatePeerValue(g, bigIntToBytes(y, g.byteLength), backend))
        expect(at(0n)).toBe("InvalidPeerValue: outside 1 < y < p-1")
        expect(at(1n)).toBe("InvalidPeerValue: outside 1 < y < p-1")
        expect(at(g.p - 1n)).toBe("InvalidPeerValue: outside 1 < y < p-1")
        expect(at(g.p)).toBe("InvalidPeerValue: outside 1 < y < p-1")
        expect(at(g.p + 5n < 1n << BigInt(g.bits) ? g.p + 5n : g.p)).toBe("InvalidPeerValue: outside 1 < y < p-1")
        // -2 = p - 2 has order 2q: a group element, but outside the subgroup.
        expect(at(g.p - 2n)).toBe("InvalidPeerValue: not in the prime-order subgroup")
        expect(rejection(() => validatePeerValue(g, new Uint8Array(g.byteLength - 1).fill(7), backend))).toBe(
          "InvalidPeerValue: wrong length"
        )
        expect(at(4n)).toBe("accepted")
      }
    }
  })
})
