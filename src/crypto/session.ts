/**
 * A call's keys after a successful handshake: sealed signalling in both directions (AES-256-GCM, strict sequence
 * numbers), the SFrame base keys per direction, the safety code. Keys live in memory only; destroy() at hang-up
 * zeroes what can be zeroed and drops the CryptoKeys, after which nothing can be sealed or opened (fail closed).
 */
import { bufferSource } from "./bytes.js"
import { KeysDestroyed, MalformedMessage, SignallingAuthenticationFailed, SignallingOutOfOrder } from "./errors.js"
import { formatSafetyCode, SAFETY_CODE_BYTES } from "./safety-code.js"
import { DEFAULT_SFRAME_SUITE, SFrameReceiver, SFrameSender, type SFrameCipherSuiteId, type SFrameReceiverOptions } from "./sframe.js"

export type Role = "caller" | "callee"

const RECORD_VERSION = 1
const RECORD_HEADER = 9
const KEY = 32
const IV = 12

/** Layout of the key block the handshake expands from the shared secret (see handshake.ts). */
export const SESSION_KEY_BLOCK_BYTES = 2 * (KEY + IV) + 2 * KEY + SAFETY_CODE_BYTES

/** SFrame key ids of a two-party call: the caller's frames carry 0, the callee's 1. */
export const SFRAME_KID = { caller: 0n, callee: 1n } as const

interface Direction {
  key: CryptoKey | undefined
  readonly iv: Uint8Array
  sequence: number
}

const nonceFor = (iv: Uint8Array, sequence: number): Uint8Array<ArrayBuffer> => {
  const nonce = new Uint8Array(iv)
  const hi = Math.floor(sequence / 0x1_0000_0000)
  const lo = sequence >>> 0
  for (let i = 0; i < 4; i++) {
    nonce[4 + i]! ^= (hi >>> (24 - 8 * i)) & 0xff
    nonce[8 + i]! ^= (lo >>> (24 - 8 * i)) & 0xff
  }
  return nonce
}

const recordHeader = (sequence: number): Uint8Array<ArrayBuffer> => {
  const header = new Uint8Array(RECORD_HEADER)
  header[0] = RECORD_VERSION
  const view = new DataView(header.buffer)
  view.setUint32(1, Math.floor(sequence / 0x1_0000_0000))
  view.setUint32(5, sequence >>> 0)
  return header
}

const importGcmKey = (raw: Uint8Array, usage: KeyUsage): Promise<CryptoKey> =>
  globalThis.crypto.subtle.importKey("raw", bufferSource(raw), "AES-GCM", false, [usage])

export class CallSession {
  readonly sframeSuite: SFrameCipherSuiteId = DEFAULT_SFRAME_SUITE
  readonly sframeSendKid: bigint
  readonly sframeReceiveKid: bigint
  private readonly contexts = new Set<SFrameSender | SFrameReceiver>()
  private opening: Promise<unknown> = Promise.resolve()
  private isDestroyed = false

  private constructor(
    readonly role: Role,
    /** Name of the handshake suite the call runs under. */
    readonly suiteName: string,
    readonly transcriptHash: Uint8Array,
    readonly safetyCode: string,
    /** SFrame base key for the frames this side sends. */
    readonly sframeSendKey: Uint8Array,
    /** SFrame base key for the frames the peer sends. */
    readonly sframeReceiveKey: Uint8Array,
    private readonly sending: Direction,
    private readonly receiving: Direction
  ) {
    this.sframeSendKid = SFRAME_KID[role]
    this.sframeReceiveKid = SFRAME_KID[role === "caller" ? "callee" : "caller"]
  }

  /** Builds a session from the handshake's key block; the block is zeroed afterwards. */
  static async fromKeyBlock(role: Role, suiteName: string, transcriptHash: Uint8Array, block: Uint8Array): Promise<CallSession> {
    if (block.length !== SESSION_KEY_BLOCK_BYTES) throw new RangeError("key block has the wrong size")
    let offset = 0
    const take = (n: number) => block.slice(offset, (offset += n))
    const callerToCallee = { key: take(KEY), iv: take(IV) }
    const calleeToCaller = { key: take(KEY), iv: take(IV) }
    const sframeCaller = take(KEY)
    const sframeCallee = take(KEY)
    const safetyCode = formatSafetyCode(take(SAFETY_CODE_BYTES))
    block.fill(0)
    const [send, receive] = role === "caller" ? [callerToCallee, calleeToCaller] : [calleeToCaller, callerToCallee]
    const sendKey = await importGcmKey(send.key, "encrypt")
    const receiveKey = await importGcmKey(receive.key, "decrypt")
    send.key.fill(0)
    receive.key.fill(0)
    return new CallSession(
      role,
      suiteName,
      transcriptHash,
      safetyCode,
      role === "caller" ? sframeCaller : sframeCallee,
      role === "caller" ? sframeCallee : sframeCaller,
      { key: sendKey, iv: send.iv, sequence: 0 },
      { key: receiveKey, iv: receive.iv, sequence: 0 }
    )
  }

  get destroyed(): boolean {
    return this.isDestroyed
  }

  /** Encrypts one signalling payload for the peer: version || sequence (8 bytes) || AES-256-GCM(payload). */
  async seal(plaintext: Uint8Array): Promise<Uint8Array> {
    const key = this.sending.key
    if (!key || this.isDestroyed) throw new KeysDestroyed()
    const sequence = this.sending.sequence++
    const header = recordHeader(sequence)
    const sealed = new Uint8Array(
      await globalThis.crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonceFor(this.sending.iv, sequence), additionalData: header },
        key,
        bufferSource(plaintext)
      )
    )
    const out = new Uint8Array(RECORD_HEADER + sealed.length)
    out.set(header)
    out.set(sealed, RECORD_HEADER)
    return out
  }

  /**
   * Decrypts the peer's next signalling record. Records must arrive in the order they were sealed; a replayed,
   * reordered or skipped record is refused with SignallingOutOfOrder, a forged one with
   * SignallingAuthenticationFailed, and neither moves the expected sequence on. Concurrent calls are processed in
   * call order.
   */
  open(record: Uint8Array): Promise<Uint8Array> {
    const result = this.opening.then(() => this.openNow(record))
    this.opening = result.catch(() => undefined)
    return result
  }

  private async openNow(record: Uint8Array): Promise<Uint8Array> {
    const key = this.receiving.key
    if (!key || this.isDestroyed) throw new KeysDestroyed()
    if (record.length < RECORD_HEADER + 16) throw new MalformedMessage({ reason: "signalling record too short" })
    if (record[0] !== RECORD_VERSION) throw new MalformedMessage({ reason: "unsupported signalling record version" })
    const view = new DataView(record.buffer, record.byteOffset, RECORD_HEADER)
    const sequence = view.getUint32(1) * 0x1_0000_0000 + view.getUint32(5)
    if (sequence !== this.receiving.sequence)
      throw new SignallingOutOfOrder({ expected: this.receiving.sequence, received: sequence })
    let plaintext: Uint8Array
    try {
      plaintext = new Uint8Array(
        await globalThis.crypto.subtle.decrypt(
          { name: "AES-GCM", iv: nonceFor(this.receiving.iv, sequence), additionalData: bufferSource(record.slice(0, RECORD_HEADER)) },
          key,
          bufferSource(record.subarray(RECORD_HEADER))
        )
      )
    } catch {
      throw new SignallingAuthenticationFailed()
    }
    if (this.isDestroyed) {
      plaintext.fill(0)
      throw new KeysDestroyed()
    }
    this.receiving.sequence++
    return plaintext
  }

  /** An SFrame sender for this side's media under this call's key; destroyed together with the session. */
  async createSFrameSender(): Promise<SFrameSender> {
    if (this.isDestroyed) throw new KeysDestroyed()
    const sender = await SFrameSender.create({ suite: this.sframeSuite, kid: this.sframeSendKid, baseKey: this.sframeSendKey })
    return this.track(sender)
  }

  /** An SFrame receiver holding the peer's key; destroyed together with the session. */
  async createSFrameReceiver(options: Omit<SFrameReceiverOptions, "suite"> = {}): Promise<SFrameReceiver> {
    if (this.isDestroyed) throw new KeysDestroyed()
    const receiver = new SFrameReceiver({ ...options, suite: this.sframeSuite })
    await receiver.addKey(this.sframeReceiveKid, this.sframeReceiveKey)
    return this.track(receiver)
  }

  private track<C extends SFrameSender | SFrameReceiver>(context: C): C {
    if (this.isDestroyed) {
      context.destroy()
      throw new KeysDestroyed()
    }
    this.contexts.add(context)
    return context
  }

  /** Hang-up: zeroes the base keys and IVs, drops every CryptoKey, destroys the SFrame contexts made from it. */
  destroy(): void {
    this.isDestroyed = true
    this.sending.key = undefined
    this.receiving.key = undefined
    this.sending.iv.fill(0)
    this.receiving.iv.fill(0)
    this.sframeSendKey.fill(0)
    this.sframeReceiveKey.fill(0)
    for (const context of this.contexts) context.destroy()
    this.contexts.clear()
  }
}
