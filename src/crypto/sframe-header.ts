/**
 * The SFrame header (RFC 9605, section 4.3): one config byte |X|K|Y|C| followed by the key id and the counter, each
 * inline when below 8 and otherwise big-endian in the fewest bytes (1 to 8). Values are unsigned 64-bit, so BigInt.
 */
import { MalformedFrame } from "./errors.js"

export interface SFrameHeader {
  readonly kid: bigint
  readonly ctr: bigint
}

export const MAX_UINT64 = (1n << 64n) - 1n

const byteLength = (value: bigint): number => {
  let n = 1
  while (value >> BigInt(8 * n) > 0n) n++
  return n
}

const writeUint = (out: Uint8Array, offset: number, value: bigint, length: number): void => {
  let v = value
  for (let i = length - 1; i >= 0; i--) {
    out[offset + i] = Number(v & 0xffn)
    v >>= 8n
  }
}

const readUint = (bytes: Uint8Array, offset: number, length: number): bigint => {
  let v = 0n
  for (let i = 0; i < length; i++) v = (v << 8n) | BigInt(bytes[offset + i]!)
  return v
}

export const encodedHeaderLength = (kid: bigint, ctr: bigint): number =>
  1 + (kid < 8n ? 0 : byteLength(kid)) + (ctr < 8n ? 0 : byteLength(ctr))

export const encodeSFrameHeader = (kid: bigint, ctr: bigint): Uint8Array => {
  if (kid < 0n || kid > MAX_UINT64 || ctr < 0n || ctr > MAX_UINT64) throw new RangeError("KID and CTR are unsigned 64-bit")
  const out = new Uint8Array(encodedHeaderLength(kid, ctr))
  let offset = 1
  let config = 0
  if (kid < 8n) config |= Number(kid) << 4
  else {
    const n = byteLength(kid)
    config |= 0x80 | ((n - 1) << 4)
    writeUint(out, offset, kid, n)
    offset += n
  }
  if (ctr < 8n) config |= Number(ctr)
  else {
    const n = byteLength(ctr)
    config |= 0x08 | (n - 1)
    writeUint(out, offset, ctr, n)
  }
  out[0] = config
  return out
}

/** Parses the header at the start of `frame`; `length` is how many bytes it took. */
export const decodeSFrameHeader = (frame: Uint8Array): SFrameHeader & { readonly length: number } => {
  if (frame.length < 1) throw new MalformedFrame({ reason: "empty frame" })
  const config = frame[0]!
  let offset = 1
  let kid: bigint
  if (config & 0x80) {
    const n = ((config >> 4) & 0x07) + 1
    if (offset + n > frame.length) throw new MalformedFrame({ reason: "truncated key id" })
    kid = readUint(frame, offset, n)
    offset += n
  } else kid = BigInt((config >> 4) & 0x07)
  let ctr: bigint
  if (config & 0x08) {
    const n = (config & 0x07) + 1
    if (offset + n > frame.length) throw new MalformedFrame({ reason: "truncated counter" })
    ctr = readUint(frame, offset, n)
    offset += n
  } else ctr = BigInt(config & 0x07)
  return { kid, ctr, length: offset }
}
