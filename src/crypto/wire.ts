/**
 * The byte encoding of handshake messages: big-endian integers and length-prefixed fields, read strictly. Every
 * decoding problem surfaces as MalformedMessage, never as a RangeError from a typed array.
 */
import { MalformedMessage } from "./errors.js"

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

export class WireWriter {
  private readonly parts: Array<Uint8Array> = []
  private length = 0

  private push(bytes: Uint8Array): this {
    this.parts.push(bytes)
    this.length += bytes.length
    return this
  }

  u8(value: number): this {
    return this.push(Uint8Array.of(value & 0xff))
  }

  u16(value: number): this {
    return this.push(Uint8Array.of((value >>> 8) & 0xff, value & 0xff))
  }

  /** Bytes of a length both sides know in advance (nonces, group elements of a known group). */
  fixed(bytes: Uint8Array): this {
    return this.push(bytes)
  }

  /** A byte string with a 16-bit length prefix. */
  bytes16(bytes: Uint8Array): this {
    if (bytes.length > 0xffff) throw new RangeError("field too long")
    return this.u16(bytes.length).push(bytes)
  }

  /** A non-empty UTF-8 string of at most 255 bytes with an 8-bit length prefix. */
  text8(text: string): this {
    const bytes = utf8Encoder.encode(text)
    if (bytes.length === 0 || bytes.length > 0xff) throw new RangeError("text must be 1..255 UTF-8 bytes")
    return this.u8(bytes.length).push(bytes)
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length)
    let offset = 0
    for (const p of this.parts) {
      out.set(p, offset)
      offset += p.length
    }
    return out
  }
}

export class WireReader {
  private offset = 0
  constructor(private readonly input: Uint8Array) {}

  private take(n: number, what: string): Uint8Array {
    if (this.offset + n > this.input.length) throw new MalformedMessage({ reason: `truncated ${what}` })
    const out = this.input.slice(this.offset, this.offset + n)
    this.offset += n
    return out
  }

  u8(what: string): number {
    return this.take(1, what)[0]!
  }

  u16(what: string): number {
    const b = this.take(2, what)
    return (b[0]! << 8) | b[1]!
  }

  fixed(n: number, what: string): Uint8Array {
    return this.take(n, what)
  }

  bytes16(what: string): Uint8Array {
    return this.take(this.u16(what), what)
  }

  text8(what: string): string {
    const n = this.u8(what)
    if (n === 0) throw new MalformedMessage({ reason: `empty ${what}` })
    try {
      return utf8Decoder.decode(this.take(n, what))
    } catch (e) {
      if (e instanceof MalformedMessage) throw e
      throw new MalformedMessage({ reason: `${what} is not UTF-8` })
    }
  }

  end(): void {
    if (this.offset !== this.input.length) throw new MalformedMessage({ reason: "trailing bytes" })
  }
}
