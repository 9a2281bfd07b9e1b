/**
 * The per-stream hash chain: canonical JSON for payloads and the byte encoding that each event's hash covers.
 *
 * Appends compute it (src/eventstore/Append.ts) and the audit recomputes it from the stored rows, with this one
 * implementation; the payload is hashed as the exact canonical JSON text stored in `events.payload`.
 *
 * hash = hex(SHA-256(encoding)), encoding =
 *   "tessera/event/v1"                       16 ASCII bytes, a domain tag
 *   prev_hash                                32 bytes (the previous event's hash; 32 zero bytes for version 1)
 *   u32be(len(stream_id)) || stream_id       UTF-8
 *   u32be(version)                           1-based
 *   u32be(len(type)) || type                 UTF-8
 *   u32be(len(payload)) || payload           UTF-8 of the canonical JSON text, exactly as stored
 *   u64be(recorded_at)                       milliseconds since the Unix epoch
 * Every variable-length field carries its length, so no two different events share an encoding.
 */
import * as crypto from "node:crypto"

export const ZERO_HASH = "0".repeat(64)

const DOMAIN_TAG = Buffer.from("tessera/event/v1", "ascii")
const FIXED_BYTES = 16 + 32 + 4 + 4 + 4 + 4 + 8

/** One-shot hashing (Node >= 20.12) is about twice as fast as createHash for inputs this small. */
const sha256Hex: (data: Buffer) => string = typeof crypto.hash === "function"
  ? (data) => crypto.hash("sha256", data, "hex")
  : (data) => crypto.createHash("sha256").update(data).digest("hex")

// The audit hashes every event of the log: encode into one reused buffer instead of allocating per event.
let scratch = Buffer.allocUnsafe(4096)

export const eventHash = (
  prevHash: string,
  streamId: string,
  version: number,
  type: string,
  payloadJson: string,
  recordedAtMs: number
): string => {
  const streamLength = Buffer.byteLength(streamId, "utf8")
  const typeLength = Buffer.byteLength(type, "utf8")
  const payloadLength = Buffer.byteLength(payloadJson, "utf8")
  const length = FIXED_BYTES + streamLength + typeLength + payloadLength
  if (length > scratch.length) scratch = Buffer.allocUnsafe(Math.max(length, scratch.length * 2))
  const buffer = scratch
  let offset = DOMAIN_TAG.copy(buffer, 0)
  // A malformed stored prev_hash must still yield a (mismatching) hash rather than throw: zero-fill first.
  buffer.fill(0, offset, offset + 32)
  buffer.write(prevHash, offset, 32, "hex")
  offset += 32
  offset = buffer.writeUInt32BE(streamLength, offset)
  offset += buffer.write(streamId, offset, "utf8")
  offset = buffer.writeUInt32BE(version, offset)
  offset = buffer.writeUInt32BE(typeLength, offset)
  offset += buffer.write(type, offset, "utf8")
  offset = buffer.writeUInt32BE(payloadLength, offset)
  offset += buffer.write(payloadJson, offset, "utf8")
  buffer.writeBigUInt64BE(BigInt(recordedAtMs), offset)
  return sha256Hex(buffer.subarray(0, length))
}

/**
 * JSON with object keys sorted (JavaScript's default string order, i.e. by UTF-16 code units) and no whitespace.
 * Values follow JSON.stringify: `toJSON` is honoured, undefined members are dropped (null inside arrays);
 * values JSON cannot represent (non-finite numbers, bigint, functions, symbols, cycles) are rejected.
 */
export const canonicalJson = (value: unknown): string => {
  const text = encode(value, new Set())
  if (text === undefined) throw new TypeError("canonicalJson: value has no JSON representation")
  return text
}

const encode = (value: unknown, ancestors: Set<object>): string | undefined => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "boolean":
      return value ? "true" : "false"
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("canonicalJson: non-finite number")
      return JSON.stringify(value)
    case "undefined":
    case "function":
    case "symbol":
      return undefined
    case "bigint":
      throw new TypeError("canonicalJson: bigint has no JSON representation")
  }
  if (value === null) return "null"
  const object = value as { toJSON?: unknown }
  if (typeof object.toJSON === "function") return encode((object.toJSON as () => unknown)(), ancestors)
  if (ancestors.has(object)) throw new TypeError("canonicalJson: cyclic value")
  ancestors.add(object)
  let text: string
  if (Array.isArray(object)) {
    text = "[" + object.map((item) => encode(item, ancestors) ?? "null").join(",") + "]"
  } else {
    const record = object as Record<string, unknown>
    const members: Array<string> = []
    for (const key of Object.keys(record).sort()) {
      const encoded = encode(record[key], ancestors)
      if (encoded !== undefined) members.push(JSON.stringify(key) + ":" + encoded)
    }
    text = "{" + members.join(",") + "}"
  }
  ancestors.delete(object)
  return text
}
