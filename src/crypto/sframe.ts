/**
 * SFrame (RFC 9605) media frame protection: key derivation per key id, a sender context that numbers its frames,
 * and a receiver context holding a key per key id and a replay window per key id. Every frame either decrypts
 * and authenticates or is refused with a typed error; nothing ever falls back to plaintext.
 */
import { bigIntToBytes, concatBytes, utf8Bytes } from "./bytes.js"
import { CounterExhausted, KeysDestroyed, ReplayedFrame, UnknownKeyId } from "./errors.js"
import { hashLength, hkdf, hmac, importHmacKey } from "./kdf.js"
import { decodeSFrameHeader, encodeSFrameHeader, MAX_UINT64 } from "./sframe-header.js"
import {
  DEFAULT_SFRAME_SUITE,
  importSFrameAead,
  sframeCipherSuite,
  type SFrameAead,
  type SFrameCipherSuiteId,
  type SFrameEngine
} from "./sframe-suites.js"

export * from "./sframe-header.js"
export * from "./sframe-suites.js"

const KEY_LABEL = utf8Bytes("SFrame 1.0 Secret key ")
const SALT_LABEL = utf8Bytes("SFrame 1.0 Secret salt ")

const suiteBytes = (suite: number): Uint8Array => Uint8Array.of((suite >> 8) & 0xff, suite & 0xff)

/** The HKDF info strings of RFC 9605, 4.4.2: label || KID (8 bytes) || cipher suite (2 bytes). */
export const sframeLabels = (suite: number, kid: bigint): { readonly keyLabel: Uint8Array; readonly saltLabel: Uint8Array } => ({
  keyLabel: concatBytes(KEY_LABEL, bigIntToBytes(kid, 8), suiteBytes(suite)),
  saltLabel: concatBytes(SALT_LABEL, bigIntToBytes(kid, 8), suiteBytes(suite))
})

/** sframe_secret = HKDF-Extract("", base_key): HMAC keyed with HashLen zero bytes, which is what an empty salt means. */
export const sframeSecret = async (suiteId: number, baseKey: Uint8Array): Promise<Uint8Array> => {
  const suite = sframeCipherSuite(suiteId)
  return hmac(await importHmacKey(suite.hash, new Uint8Array(hashLength(suite.hash))), baseKey)
}

/** sframe_key and sframe_salt for one key id (RFC 9605, 4.4.2). */
export const deriveSFrameKeyMaterial = async (
  suiteId: number,
  kid: bigint,
  baseKey: Uint8Array
): Promise<{ readonly key: Uint8Array; readonly salt: Uint8Array }> => {
  const suite = sframeCipherSuite(suiteId)
  const { keyLabel, saltLabel } = sframeLabels(suiteId, kid)
  const empty = new Uint8Array(0)
  const [key, salt] = await Promise.all([
    hkdf(suite.hash, baseKey, empty, keyLabel, suite.nk),
    hkdf(suite.hash, baseKey, empty, saltLabel, suite.nn)
  ])
  return { key, salt }
}

/** nonce = sframe_salt XOR CTR, the counter right-aligned. */
export const sframeNonce = (salt: Uint8Array, ctr: bigint): Uint8Array => {
  const nonce = salt.slice()
  let v = ctr
  for (let i = nonce.length - 1; i >= nonce.length - 8 && v > 0n; i--) {
    nonce[i]! ^= Number(v & 0xffn)
    v >>= 8n
  }
  return nonce
}

const EMPTY = new Uint8Array(0)

/** One key id's keys, imported once: what both contexts use per frame. */
export class SFrameKey {
  private constructor(
    readonly suite: SFrameCipherSuiteId,
    readonly kid: bigint,
    private readonly aead: SFrameAead,
    private readonly salt: Uint8Array
  ) {}

  static async derive(suite: SFrameCipherSuiteId, kid: bigint | number, baseKey: Uint8Array, engine?: SFrameEngine): Promise<SFrameKey> {
    const id = BigInt(kid)
    if (id < 0n || id > MAX_UINT64) throw new RangeError("KID is unsigned 64-bit")
    const { key, salt } = await deriveSFrameKeyMaterial(suite, id, baseKey)
    try {
      return new SFrameKey(suite, id, await importSFrameAead(suite, key, engine), salt)
    } finally {
      key.fill(0)
    }
  }

  /** header || ciphertext || tag for the frame numbered `ctr`. */
  encrypt(ctr: bigint, plaintext: Uint8Array, metadata: Uint8Array = EMPTY): Promise<Uint8Array> {
    return this.aead.seal(sframeNonce(this.salt, ctr), encodeSFrameHeader(this.kid, ctr), metadata, plaintext)
  }

  /** Opens a frame whose header was already parsed to (kid, ctr, headerLength). */
  decrypt(ctr: bigint, frame: Uint8Array, headerLength: number, metadata: Uint8Array = EMPTY): Promise<Uint8Array> {
    return this.aead.open(
      sframeNonce(this.salt, ctr),
      frame.subarray(0, headerLength),
      metadata,
      frame.subarray(headerLength)
    )
  }

  destroy(): void {
    this.salt.fill(0)
  }
}

export interface SFrameSenderOptions {
  readonly suite?: SFrameCipherSuiteId
  readonly kid: bigint | number
  readonly baseKey: Uint8Array
  /** First counter value; 0 unless a key is resumed. */
  readonly initialCounter?: bigint
  /** Forces an implementation (tests); by default node:crypto in Node, WebCrypto elsewhere. */
  readonly engine?: SFrameEngine
}

/** Encrypts one sender's frames under one key id, numbering them 0, 1, 2, ... */
export class SFrameSender {
  private key: SFrameKey | undefined
  private next: bigint

  private constructor(key: SFrameKey, initialCounter: bigint) {
    this.key = key
    this.next = initialCounter
  }

  static async create(options: SFrameSenderOptions): Promise<SFrameSender> {
    const key = await SFrameKey.derive(options.suite ?? DEFAULT_SFRAME_SUITE, options.kid, options.baseKey, options.engine)
    return new SFrameSender(key, options.initialCounter ?? 0n)
  }

  get suite(): SFrameCipherSuiteId | undefined {
    return this.key?.suite
  }

  /** The counter the next frame will carry. */
  get counter(): bigint {
    return this.next
  }

  /** Rejects with KeysDestroyed after destroy() and CounterExhausted after 2^64 frames; never emits plaintext. */
  encrypt(frame: Uint8Array, metadata?: Uint8Array): Promise<Uint8Array> {
    const key = this.key
    if (!key) return Promise.reject(new KeysDestroyed())
    if (this.next > MAX_UINT64) return Promise.reject(new CounterExhausted())
    // The counter is taken synchronously so concurrent calls never share a nonce.
    const ctr = this.next++
    return key.encrypt(ctr, frame, metadata)
  }

  destroy(): void {
    this.key?.destroy()
    this.key = undefined
  }
}

/** Which counters of one key id were accepted: the highest, and a bitmap of the `size` counters below it. */
class ReplayWindow {
  private highest = -1n
  private seen = 0n
  private readonly mask: bigint

  constructor(private readonly size: bigint) {
    this.mask = (1n << size) - 1n
  }

  accepts(ctr: bigint): boolean {
    if (ctr > this.highest) return true
    const age = this.highest - ctr
    return age < this.size && ((this.seen >> age) & 1n) === 0n
  }

  mark(ctr: bigint): void {
    if (ctr > this.highest) {
      const shift = this.highest < 0n ? this.size : ctr - this.highest
      this.seen = shift >= this.size ? 1n : ((this.seen << shift) | 1n) & this.mask
      this.highest = ctr
    } else this.seen |= 1n << (this.highest - ctr)
  }
}

export interface SFrameReceiverOptions {
  readonly suite?: SFrameCipherSuiteId
  /** How far behind the newest frame a late frame may arrive (in counter values). Default 128. */
  readonly replayWindow?: number
  /** Forces an implementation (tests); by default node:crypto in Node, WebCrypto elsewhere. */
  readonly engine?: SFrameEngine
}

/** Decrypts frames from any sender whose key id it holds a key for; refuses duplicates and frames too old. */
export class SFrameReceiver {
  readonly suite: SFrameCipherSuiteId
  private readonly engine: SFrameEngine | undefined
  private readonly windowSize: bigint
  private readonly keys = new Map<bigint, { readonly key: SFrameKey; readonly window: ReplayWindow }>()
  private destroyed = false

  constructor(options: SFrameReceiverOptions = {}) {
    this.suite = options.suite ?? DEFAULT_SFRAME_SUITE
    this.engine = options.engine
    const size = options.replayWindow ?? 128
    if (!Number.isInteger(size) || size < 1 || size > 65536) throw new RangeError("replay window must be 1..65536")
    this.windowSize = BigInt(size)
  }

  /** Installs (or replaces) the key for a key id; a replaced key starts a fresh replay window. */
  async addKey(kid: bigint | number, baseKey: Uint8Array): Promise<void> {
    if (this.destroyed) throw new KeysDestroyed()
    const key = await SFrameKey.derive(this.suite, kid, baseKey, this.engine)
    if (this.destroyed) {
      key.destroy()
      throw new KeysDestroyed()
    }
    this.keys.get(key.kid)?.key.destroy()
    this.keys.set(key.kid, { key, window: new ReplayWindow(this.windowSize) })
  }

  removeKey(kid: bigint | number): void {
    const id = BigInt(kid)
    this.keys.get(id)?.key.destroy()
    this.keys.delete(id)
  }

  async decrypt(frame: Uint8Array, metadata?: Uint8Array): Promise<Uint8Array> {
    if (this.destroyed) throw new KeysDestroyed()
    const header = decodeSFrameHeader(frame)
    const entry = this.keys.get(header.kid)
    if (!entry) throw new UnknownKeyId()
    if (!entry.window.accepts(header.ctr)) throw new ReplayedFrame()
    const plaintext = await entry.key.decrypt(header.ctr, frame, header.length, metadata)
    // Checked again: another decryption of the same counter may have finished while this one was running.
    if (this.keys.get(header.kid) !== entry || !entry.window.accepts(header.ctr)) {
      plaintext.fill(0)
      throw this.keys.get(header.kid) === entry ? new ReplayedFrame() : new UnknownKeyId()
    }
    entry.window.mark(header.ctr)
    return plaintext
  }

  destroy(): void {
    this.destroyed = true
    for (const { key } of this.keys.values()) key.destroy()
    this.keys.clear()
  }
}

