/**
 * The media keys of a conference on one device: a group key per epoch, as the host hands it out, and the SFrame
 * contexts made from it. Every participant has a sender slot (the host 0, each customer its own); its frames carry
 * the key id (epoch << 4 | slot), so a receiver knows from the frame's header which epoch's key opens it. All
 * senders of an epoch share its group key: SFrame derives the AEAD key and salt from the base key *and* the key id,
 * so distinct slots never share a nonce. A participant has one sender for all its tracks, so a counter is never
 * used twice under one key id.
 *
 * A new epoch replaces the sender's key at once; receivers keep the epochs before it until the device retires them
 * (after a short grace, for frames still on their way), and wait briefly for an epoch that is about to arrive. No
 * key, no media: a sender without a key refuses to encrypt, and destroying the ring zeroes every key it held.
 */
import { Schema } from "effect"
import { fromBase64Url } from "../crypto/bytes.js"
import { KeysDestroyed, UnknownKeyId } from "../crypto/errors.js"
import {
  decodeSFrameHeader,
  DEFAULT_SFRAME_SUITE,
  type SFrameCipherSuiteId,
  SFrameReceiver,
  SFrameSender
} from "../crypto/sframe.js"
import { ConferenceId } from "../domain/liveEvents.js"

export const SLOT_BITS = 4
/** Sender slots per epoch: the host's (0) and one per customer. */
export const MAX_SLOTS = 1 << SLOT_BITS
export const GROUP_KEY_BYTES = 32
/** Key ids stay far below 2^64, epochs below 2^53. */
export const MAX_EPOCH = 2 ** 40

export const conferenceKeyId = (epoch: number, slot: number): bigint => (BigInt(epoch) << BigInt(SLOT_BITS)) | BigInt(slot)
export const keyIdParts = (kid: bigint): { readonly epoch: number; readonly slot: number } => ({
  epoch: Number(kid >> BigInt(SLOT_BITS)),
  slot: Number(kid & BigInt(MAX_SLOTS - 1))
})

/**
 * One epoch's group key as the host sends it to one participant, sealed over their secured call: the recipient's
 * own sender slot with it. Include it in the messages of the call (`Schema.Union(AppMessages, ConferenceKey)`).
 */
export const ConferenceKey = Schema.TaggedStruct("ConferenceKey", {
  conferenceId: ConferenceId,
  epoch: Schema.Int.pipe(Schema.between(1, MAX_EPOCH)),
  slot: Schema.Int.pipe(Schema.between(0, MAX_SLOTS - 1)),
  suite: Schema.Literal(0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x0008),
  /** base64url, GROUP_KEY_BYTES bytes. */
  key: Schema.String.pipe(Schema.filter((text) => {
    try {
      return fromBase64Url(text).length === GROUP_KEY_BYTES
    } catch {
      return false
    }
  }, { message: () => `a group key is ${GROUP_KEY_BYTES} bytes` }))
})
export type ConferenceKey = typeof ConferenceKey.Type

/** The device has no key for the conference (yet, or any more): nothing is encrypted. */
export class NoConferenceKey extends Schema.TaggedError<NoConferenceKey>()("NoConferenceKey", {}) {
  override get message() {
    return "no conference key to encrypt with"
  }
}

export interface CurrentConferenceKey {
  readonly epoch: number
  /** This device's sender slot in the epoch. */
  readonly slot: number
  /** The key id this device's frames carry. */
  readonly keyId: bigint
}

export interface ConferenceKeyRingOptions {
  readonly suite?: SFrameCipherSuiteId
  /** How long a receiver waits for the key of an epoch newer than its newest, for frames that overtook it. 500 ms. */
  readonly futureEpochWaitMs?: number
}

/** How far ahead of the newest known epoch a frame may be for a receiver to wait for its key. */
const FUTURE_EPOCHS = 4

/** This device's frames, under the current epoch's key (one sender for all of its tracks). */
export class ConferenceSender {
  private active: { readonly key: CurrentConferenceKey; readonly sframe: SFrameSender } | undefined
  private destroyed = false

  /** @internal */
  constructor(readonly suite: SFrameCipherSuiteId) {}

  /** The key id of the frames it sends now. */
  get keyId(): bigint | undefined {
    return this.active?.key.keyId
  }

  /** Rejects with NoConferenceKey before the first key and after the device left, KeysDestroyed once destroyed. */
  encrypt(frame: Uint8Array, metadata?: Uint8Array): Promise<Uint8Array> {
    if (this.destroyed) return Promise.reject(new KeysDestroyed())
    if (!this.active) return Promise.reject(new NoConferenceKey())
    return this.active.sframe.encrypt(frame, metadata)
  }

  /** @internal */
  async use(key: CurrentConferenceKey, groupKey: Uint8Array): Promise<void> {
    const sframe = await SFrameSender.create({ suite: this.suite, kid: key.keyId, baseKey: groupKey })
    if (this.destroyed || (this.active && this.active.key.epoch >= key.epoch)) return sframe.destroy()
    this.active?.sframe.destroy()
    this.active = { key, sframe }
  }

  /** @internal */
  destroy(): void {
    this.destroyed = true
    this.active?.sframe.destroy()
    this.active = undefined
  }
}

/** The frames of every other participant, each opened with the key of the epoch its key id names. */
export class ConferenceReceiver {
  private readonly sframe: SFrameReceiver
  /** Key ids installed in `sframe`, by epoch; pending installations by key id. */
  private readonly installed = new Map<number, Set<bigint>>()
  private readonly installing = new Map<bigint, Promise<void>>()

  /** @internal */
  constructor(private readonly ring: ConferenceKeyRing, suite: SFrameCipherSuiteId, replayWindow?: number) {
    this.sframe = new SFrameReceiver(replayWindow === undefined ? { suite } : { suite, replayWindow })
  }

  /**
   * Opens one frame, or rejects: UnknownKeyId for an epoch the device does not hold (any more, or not within the
   * wait), the SFrame errors for a frame that does not authenticate or was seen before, KeysDestroyed after the end.
   */
  async decrypt(frame: Uint8Array, metadata?: Uint8Array): Promise<Uint8Array> {
    if (this.ring.isDestroyed) throw new KeysDestroyed()
    const { kid } = decodeSFrameHeader(frame)
    const { epoch } = keyIdParts(kid)
    const groupKey = this.ring.keyOf(epoch) ?? await this.ring.awaitEpoch(epoch)
    if (!groupKey) throw new UnknownKeyId()
    if (!this.installed.get(epoch)?.has(kid)) await this.install(epoch, kid, groupKey)
    return this.sframe.decrypt(frame, metadata)
  }

  private install(epoch: number, kid: bigint, groupKey: Uint8Array): Promise<void> {
    const pending = this.installing.get(kid) ?? this.sframe.addKey(kid, groupKey).then(() => {
      // Retired while the key was being derived: it must not stay.
      if (!this.ring.keyOf(epoch)) {
        this.sframe.removeKey(kid)
        throw new UnknownKeyId()
      }
      const kids = this.installed.get(epoch) ?? new Set<bigint>()
      kids.add(kid)
      this.installed.set(epoch, kids)
    }).finally(() => this.installing.delete(kid))
    this.installing.set(kid, pending)
    return pending
  }

  /** @internal */
  forget(epoch: number): void {
    for (const kid of this.installed.get(epoch) ?? []) this.sframe.removeKey(kid)
    this.installed.delete(epoch)
  }

  /** @internal */
  destroy(): void {
    this.sframe.destroy()
    this.installed.clear()
  }
}

/** A device's keys of one conference: the epochs it holds, its sender, its receivers. */
export class ConferenceKeyRing {
  readonly suite: SFrameCipherSuiteId
  readonly sender: ConferenceSender
  private readonly epochs = new Map<number, Uint8Array>()
  private readonly receivers = new Set<ConferenceReceiver>()
  private readonly waiters = new Set<() => void>()
  private readonly waitMs: number
  private currentKey: CurrentConferenceKey | undefined
  private destroyed = false

  constructor(options: ConferenceKeyRingOptions = {}) {
    this.suite = options.suite ?? DEFAULT_SFRAME_SUITE
    this.waitMs = options.futureEpochWaitMs ?? 500
    this.sender = new ConferenceSender(this.suite)
  }

  get current(): CurrentConferenceKey | undefined {
    return this.currentKey
  }

  get isDestroyed(): boolean {
    return this.destroyed
  }

  /** The epochs whose keys it holds, oldest first. */
  get heldEpochs(): ReadonlyArray<number> {
    return [...this.epochs.keys()].sort((a, b) => a - b)
  }

  /**
   * Makes `epoch` current, with this device sending in `slot`; the ring keeps its own copy of the key. Returns
   * false (and changes nothing) for an epoch not newer than the current one: a key once used is never used afresh,
   * which would start its counters over.
   */
  async install(epoch: number, slot: number, groupKey: Uint8Array): Promise<boolean> {
    if (this.destroyed) throw new KeysDestroyed()
    if (!Number.isInteger(epoch) || epoch < 1 || epoch > MAX_EPOCH) throw new RangeError("epoch out of range")
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_SLOTS) throw new RangeError("slot out of range")
    if (groupKey.length !== GROUP_KEY_BYTES) throw new RangeError(`a group key is ${GROUP_KEY_BYTES} bytes`)
    if (this.currentKey && epoch <= this.currentKey.epoch) return false
    const key: CurrentConferenceKey = { epoch, slot, keyId: conferenceKeyId(epoch, slot) }
    const copy = groupKey.slice()
    this.currentKey = key
    this.epochs.set(epoch, copy)
    await this.sender.use(key, copy)
    if (this.destroyed) return false
    for (const wake of this.waiters) wake()
    return true
  }

  /** Drops the keys of the epochs before `epoch` (never the current one), in every receiver. */
  retireBefore(epoch: number): void {
    for (const [held, key] of this.epochs) {
      if (held >= epoch || held === this.currentKey?.epoch) continue
      key.fill(0)
      this.epochs.delete(held)
      for (const receiver of this.receivers) receiver.forget(held)
    }
  }

  createReceiver(options: { readonly replayWindow?: number } = {}): ConferenceReceiver {
    if (this.destroyed) throw new KeysDestroyed()
    const receiver = new ConferenceReceiver(this, this.suite, options.replayWindow)
    this.receivers.add(receiver)
    return receiver
  }

  /** @internal */
  keyOf(epoch: number): Uint8Array | undefined {
    return this.epochs.get(epoch)
  }

  /** @internal The key of an epoch about to arrive, or undefined when it does not within the wait. */
  awaitEpoch(epoch: number): Promise<Uint8Array | undefined> {
    const newest = this.currentKey?.epoch ?? 0
    if (this.destroyed || epoch <= newest || epoch > newest + FUTURE_EPOCHS) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const done = () => {
        const key = this.epochs.get(epoch)
        if (key === undefined && !this.destroyed && (this.currentKey?.epoch ?? 0) < epoch) return
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve(key)
      }
      const timer = setTimeout(() => {
        this.waiters.delete(done)
        resolve(this.epochs.get(epoch))
      }, this.waitMs)
      this.waiters.add(done)
    })
  }

  /** Zeroes every key; the sender and the receivers refuse everything from now on. */
  destroy(): void {
    this.destroyed = true
    this.sender.destroy()
    for (const receiver of this.receivers) receiver.destroy()
    this.receivers.clear()
    for (const key of this.epochs.values()) key.fill(0)
    this.epochs.clear()
    this.currentKey = undefined
    for (const wake of this.waiters) wake()
  }
}
