/**
 * MODP arithmetic in plain BigInt for browsers, where WebCrypto offers no finite-field DH. Exponentiation is
 * left-to-right sliding window; the subgroup test uses Euler's criterion: for a safe prime p = 2q + 1,
 * y^q = 1 mod p exactly when the Legendre symbol (y/p) is 1, and the Jacobi-symbol algorithm computes that with
 * shifts and reductions instead of a 3071-bit exponentiation. BigInt is not constant-time; the exponents it sees are
 * single-use ephemerals that live for one handshake.
 */
import { bigIntToBytes, bytesToBigInt } from "./bytes.js"
import type { ModpBackend, ModpGroup } from "./modp.js"

const windowBits = (exponentBits: number): number => (exponentBits > 1024 ? 6 : exponentBits > 128 ? 5 : 3)

/** base^exponent mod m for m > 1. */
export const modPowBigInt = (base: bigint, exponent: bigint, m: bigint): bigint => {
  if (exponent === 0n) return 1n % m
  const b = base % m
  const bits = exponent.toString(2)
  const k = windowBits(bits.length)
  // odd[i] = b^(2i+1)
  const odd: Array<bigint> = [b]
  const b2 = (b * b) % m
  for (let i = 1; i < 1 << (k - 1); i++) odd.push((odd[i - 1]! * b2) % m)
  let result = 1n
  let i = 0
  while (i < bits.length) {
    if (bits[i] === "0") {
      result = (result * result) % m
      i++
      continue
    }
    // The longest window of at most k bits starting here that ends in a 1 bit.
    let end = Math.min(i + k, bits.length)
    while (bits[end - 1] === "0") end--
    const value = parseInt(bits.slice(i, end), 2)
    for (let s = i; s < end; s++) result = (result * result) % m
    result = (result * odd[(value - 1) >> 1]!) % m
    i = end
  }
  return result
}

/** The Jacobi symbol (a/n) for odd n > 0: 1, -1, or 0 when gcd(a, n) > 1. */
export const jacobiSymbol = (a: bigint, n: bigint): -1 | 0 | 1 => {
  if (n <= 0n || n % 2n === 0n) throw new RangeError("n must be odd and positive")
  let x = ((a % n) + n) % n
  let y = n
  let sign: 1 | -1 = 1
  while (x !== 0n) {
    let twos = 0
    while ((x & 1n) === 0n) {
      x >>= 1n
      twos++
    }
    const y8 = y & 7n
    if (twos % 2 === 1 && (y8 === 3n || y8 === 5n)) sign = sign === 1 ? -1 : 1
    ;[x, y] = [y, x]
    if ((x & 3n) === 3n && (y & 3n) === 3n) sign = sign === 1 ? -1 : 1
    x %= y
  }
  return y === 1n ? sign : 0
}

export const bigintModpBackend: ModpBackend = {
  name: "bigint",
  modPow: (group: ModpGroup, base: Uint8Array, exponent: Uint8Array): Uint8Array =>
    bigIntToBytes(modPowBigInt(bytesToBigInt(base), bytesToBigInt(exponent), group.p), group.byteLength),
  inPrimeOrderSubgroup: (group: ModpGroup, y: Uint8Array): boolean => jacobiSymbol(bytesToBigInt(y), group.p) === 1
}
