/**
 * A conference's key rings on their own (no server): key ids name (epoch, slot); every participant of an epoch opens
 * every other's frames; a new epoch moves the sender at once while receivers keep the old one for its grace; a frame
 * that overtook its key waits for it; a stale or repeated key never restarts a sender; destroyed rings fail closed.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { decodeSFrameHeader } from "../../src/crypto/sframe.js"
import {
  ConferenceKeyRing,
  conferenceKeyId,
  keyIdParts,
  MAX_SLOTS,
  NoConferenceKey
} from "../../src/sdk/ConferenceKeys.js"

const frame = (text: string) => new TextEncoder().encode(text)
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
const failure = (promise: Promise<unknown>) => promise.then(() => "opened", (e: { _tag?: string; name?: string }) => e._tag ?? e.name)

/** Three participants (host in slot 0) holding the same epoch key. */
const threeRings = async (epoch: number, key: Uint8Array) => {
  const rings = [new ConferenceKeyRing(), new ConferenceKeyRing(), new ConferenceKeyRing()]
  await Promise.all(rings.map((ring, slot) => ring.install(epoch, slot, key)))
  return rings
}

describe("conference keys", () => {
  it("key ids encode (epoch, slot) and stay distinct per sender", () => {
    expect(conferenceKeyId(1, 0)).toBe(16n)
    expect(conferenceKeyId(3, 2)).toBe(50n)
    expect(keyIdParts(conferenceKeyId(123_456, 15))).toEqual({ epoch: 123_456, slot: 15 })
    expect(MAX_SLOTS).toBe(16)
    const ids = new Set<bigint>()
    for (let epoch = 1; epoch <= 20; epoch++) for (let slot = 0; slot < MAX_SLOTS; slot++) ids.add(conferenceKeyId(epoch, slot))
    expect(ids.size).toBe(20 * MAX_SLOTS)
  })

  it("every participant of an epoch opens the others' frames; another key opens none", async () => {
    const rings = await threeRings(1, randomBytes(32))
    const outsider = new ConferenceKeyRing()
    await outsider.install(1, 3, randomBytes(32))
    for (const [slot, ring] of rings.entries()) {
      const sealed = await ring.sender.encrypt(frame(`from ${slot}`))
      expect(decodeSFrameHeader(sealed).kid).toBe(conferenceKeyId(1, slot))
      for (const other of rings) expect(text(await other.createReceiver().decrypt(sealed))).toBe(`from ${slot}`)
      expect(await failure(outsider.createReceiver().decrypt(sealed))).toBe("FrameAuthenticationFailed")
    }
  })

  it("a new epoch moves the sender at once; old frames open during the grace and not after retirement", async () => {
    const [host, customer] = await threeRings(1, randomBytes(32))
    const receiver = customer!.createReceiver()
    const before = await host!.sender.encrypt(frame("epoch 1"))
    const next = randomBytes(32)
    expect(await host!.install(2, 0, next)).toBe(true)
    expect(await customer!.install(2, 1, next)).toBe(true)
    const after = await host!.sender.encrypt(frame("epoch 2"))
    expect(keyIdParts(decodeSFrameHeader(after).kid)).toEqual({ epoch: 2, slot: 0 })
    expect(text(await receiver.decrypt(after))).toBe("epoch 2")
    expect(text(await receiver.decrypt(before))).toBe("epoch 1")
    customer!.retireBefore(2)
    expect(customer!.heldEpochs).toEqual([2])
    expect(await failure(customer!.createReceiver().decrypt(before))).toBe("UnknownKeyId")
  })

  it("a frame that overtook its epoch's key waits for it; one far ahead does not", async () => {
    const key = randomBytes(32)
    const [host, customer] = await threeRings(1, key)
    const next = randomBytes(32)
    await host!.install(2, 0, next)
    const early = await host!.sender.encrypt(frame("early"))
    const receiver = customer!.createReceiver()
    const opening = receiver.decrypt(early)
    setTimeout(() => void customer!.install(2, 1, next), 50)
    expect(text(await opening)).toBe("early")

    await host!.install(40, 0, randomBytes(32))
    expect(await failure(receiver.decrypt(await host!.sender.encrypt(frame("far"))))).toBe("UnknownKeyId")
  })

  it("a stale or repeated epoch never replaces the current key (its counters would start over)", async () => {
    const ring = new ConferenceKeyRing()
    const key = randomBytes(32)
    expect(await ring.install(5, 1, key)).toBe(true)
    const first = await ring.sender.encrypt(frame("a"))
    expect(await ring.install(5, 1, key)).toBe(false)
    expect(await ring.install(4, 1, randomBytes(32))).toBe(false)
    const second = await ring.sender.encrypt(frame("b"))
    expect(decodeSFrameHeader(second)).toMatchObject({ kid: conferenceKeyId(5, 1), ctr: decodeSFrameHeader(first).ctr + 1n })
  })

  it("fails closed: no key, no frames; destroyed, nothing opens and no key is left", async () => {
    const ring = new ConferenceKeyRing()
    expect(await failure(ring.sender.encrypt(frame("x")))).toBe("NoConferenceKey")
    expect(new NoConferenceKey().message).toContain("no conference key")
    const key = randomBytes(32)
    await ring.install(1, 2, key)
    const receiver = ring.createReceiver()
    const sealed = await ring.sender.encrypt(frame("x"))
    ring.destroy()
    expect(await failure(ring.sender.encrypt(frame("y")))).toBe("KeysDestroyed")
    expect(await failure(receiver.decrypt(sealed))).toBe("KeysDestroyed")
    expect(ring.heldEpochs).toEqual([])
    expect(() => ring.createReceiver()).toThrow()
  })
})
