/** Byte helpers shared by the crypto modules; they run unchanged in Node and in the browser. */

/** WebCrypto's typings want ArrayBuffer-backed views; tessera never hands it shared memory. */
export const bufferSource = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => bytes as Uint8Array<ArrayBuffer>

export const concatBytes = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

export const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

export const fromHex = (hex: string): Uint8Array => {
  if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new Error("invalid hex")
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** Constant-time comparison of two byte strings of equal length. */
export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

const utf8 = new TextEncoder()
export const utf8Bytes = (text: string): Uint8Array => utf8.encode(text)

export const toBase64Url = (bytes: Uint8Array): string => {
  let binary = ""
  for (const b of bytes) binary += String.fromCharCode(b)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

export const fromBase64Url = (text: string): Uint8Array => {
  if (/[^A-Za-z0-9_-]/.test(text)) throw new Error("invalid base64url")
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4)
  const binary = atob(padded)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

/** Unsigned big-endian bytes to a BigInt (the empty string is 0). */
export const bytesToBigInt = (bytes: Uint8Array): bigint => (bytes.length === 0 ? 0n : BigInt("0x" + toHex(bytes)))

/** Unsigned big-endian encoding left-padded to exactly `length` bytes; throws a RangeError if it does not fit. */
export const bigIntToBytes = (n: bigint, length: number): Uint8Array => {
  const hex = n.toString(16)
  if (n < 0n || hex.length > length * 2) throw new RangeError("value does not fit")
  return fromHex(hex.padStart(length * 2, "0"))
}
