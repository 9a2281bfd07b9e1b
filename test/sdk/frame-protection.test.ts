/**
 * The frame layer of the browser media (src/sdk/media/frameProtection.ts) with a conference's keys, in Node: what
 * its TransformStreams do to each encoded frame, on audio frames (all of an audio frame is sealed, so no browser is
 * needed to make one). A frame sealed by a conference sender opens with another participant's receiver, and the
 * receiver's check sees the sender's key id; a check that refuses drops the frame; a frame whose key id was
 * altered does not open at all, so a relay cannot pass one sender's frames off as another's.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { ConferenceKeyRing, conferenceKeyId } from "../../src/sdk/ConferenceKeys.js"
import { openFrame, sealFrame } from "../../src/sdk/media/frameProtection.js"

const audioFrame = (text: string) => ({ data: new TextEncoder().encode(text).buffer as ArrayBuffer }) as RTCEncodedAudioFrame
const text = (data: ArrayBuffer) => new TextDecoder().decode(data)
const failure = (promise: Promise<unknown>) => promise.then(() => "opened", (e: Error & { _tag?: string }) => e._tag ?? e.constructor.name)

describe("frame protection with conference keys", () => {
  it("opens a participant's frame, telling the check its key id; a refusing check or an altered key id drops it", async () => {
    const key = randomBytes(32)
    const [sender, receiver] = [new ConferenceKeyRing(), new ConferenceKeyRing()]
    await sender.install(3, 2, key)
    await receiver.install(3, 1, key)
    const opener = receiver.createReceiver({ replayWindow: 64 })

    const sealed = await sealFrame(sender.sender, "audio", audioFrame("hello"))
    const seen: Array<bigint> = []
    const opened = await openFrame(opener, "audio", { data: sealed } as RTCEncodedAudioFrame, (kid) => {
      seen.push(kid)
      return true
    })
    expect(text(opened)).toBe("hello")
    expect(seen).toEqual([conferenceKeyId(3, 2)])

    const next = await sealFrame(sender.sender, "audio", audioFrame("refused"))
    expect(await failure(openFrame(opener, "audio", { data: next } as RTCEncodedAudioFrame, () => false))).toBe("FrameRefused")

    // The key id in the header (one byte after the config byte, RFC 9605 4.3) claims slot 1 instead of 2: it is
    // authenticated, so the frame does not open, and the check never hears of it.
    const forged = new Uint8Array(await sealFrame(sender.sender, "audio", audioFrame("forged")))
    expect(forged[0]! & 0xf0).toBe(0x80)
    expect(forged[1]).toBe(Number(conferenceKeyId(3, 2)))
    forged[1] = Number(conferenceKeyId(3, 1))
    const checked: Array<bigint> = []
    expect(await failure(openFrame(opener, "audio", { data: forged.buffer } as RTCEncodedAudioFrame, (kid) => checked.push(kid) > 0)))
      .not.toBe("opened")
    expect(checked).toEqual([])
    sender.destroy()
    receiver.destroy()
  })
})
