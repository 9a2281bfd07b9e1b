/**
 * MODP arithmetic through node:crypto (OpenSSL). The module is reached with process.getBuiltinModule, so bundling
 * this file for the browser needs no shims: there the function simply reports that no backend exists.
 */
import { bigIntToBytes, bytesToBigInt } from "./bytes.js"
import type { ModpBackend, ModpGroup } from "./modp.js"

type NodeCrypto = typeof import("node:crypto")

const loadNodeCrypto = (): NodeCrypto | undefined => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  const mod = proc?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined
  return mod && typeof mod.createDiffieHellman === "function" ? mod : undefined
}

const leftPad = (bytes: Uint8Array, length: number): Uint8Array => {
  if (bytes.length === length) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
  const out = new Uint8Array(length)
  out.set(bytes, length - bytes.length)
  return out
}

const isTwo = (bytes: Uint8Array): boolean => bytes.length > 0 && bytes[bytes.length - 1] === 2 && bytes.subarray(0, -1).every((b) => b === 0)

const makeBackend = (nodeCrypto: NodeCrypto): ModpBackend => {
  // A DiffieHellman object over (p, g = 2) with the exponent as its "private key": generateKeys gives 2^exp, and
  // computeSecret(base) gives base^exp. Any generator other than 2 makes OpenSSL re-validate the group (seconds),
  // and computeSecret refuses bases outside [2, p-2] and results equal to 1, so callers validate first.
  const modPow = (group: ModpGroup, base: Uint8Array, exponent: Uint8Array): Uint8Array => {
    const dh = nodeCrypto.createDiffieHellman(group.pBytes, TWO)
    dh.setPrivateKey(exponent)
    return leftPad(isTwo(base) ? dh.generateKeys() : dh.computeSecret(base), group.byteLength)
  }
  // Euler's criterion without computing y^q itself (OpenSSL rejects the result 1): p = 2q + 1 with q odd means
  // p = 3 mod 4, so r = y^((q+1)/2) satisfies r^2 = y^q * y, which equals y exactly when y^q = 1.
  const inPrimeOrderSubgroup = (group: ModpGroup, y: Uint8Array): boolean => {
    const r = bytesToBigInt(modPow(group, y, sqrtExponent(group)))
    return (r * r) % group.p === bytesToBigInt(y)
  }
  return { name: "node-crypto", modPow, inPrimeOrderSubgroup }
}

const TWO = new Uint8Array([2])
const sqrtExponents = new Map<ModpGroup, Uint8Array>()
const sqrtExponent = (group: ModpGroup): Uint8Array => {
  let e = sqrtExponents.get(group)
  if (!e) {
    e = bigIntToBytes((group.q + 1n) / 2n, group.byteLength)
    sqrtExponents.set(group, e)
  }
  return e
}

let cached: ModpBackend | null | undefined

/** The node:crypto backend, or undefined outside Node (or on a Node without process.getBuiltinModule). */
export const nodeModpBackend = (): ModpBackend | undefined => {
  if (cached === undefined) {
    const nodeCrypto = loadNodeCrypto()
    cached = nodeCrypto ? makeBackend(nodeCrypto) : null
  }
  return cached ?? undefined
}
