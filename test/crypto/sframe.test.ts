/** SFrame contexts: round trips in every suite, replay window, key ids, tampering, fail-closed after destroy. */
import { describe, expect, it } from "@effect/vitest"
import { createCipheriv, createHmac, hkdfSync } from "node:crypto"
import { fromHex } from "../../src/crypto/bytes.js"
import {
  decodeSFrameHeader,
  encodeSFrameHeader,
  SFRAME_CIPHER_SUITES,
  SFrameReceiver,
  SFrameSender,
  type SFrameCipherSuiteId
} from "../../src/crypto/sframe.js"

const tagOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => (e as { _tag?: string })._tag ?? `untyped ${String(e)}`
  )

const baseKey = fromHex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
const frame = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

const pair = async (suite: SFrameCipherSuiteId, kid = 5n, replayWindow = 16) => {
  const sender = await SFrameSender.create({ suite, kid, baseKey })
  const receiver = new SFrameReceiver({ suite, replayWindow })
  await receiver.addKey(kid, baseKey)
  return { sender, receiver }
}

describe("SFrame header", () => {
  it("round-trips the extremes of KID and CTR", () => {
    for (const [kid, ctr] of [[0n, 0n], [7n, 7n], [8n, 8n], [255n, 256n], [(1n << 64n) - 1n, (1n << 64n) - 1n]] as const) {
      const bytes = encodeSFrameHeader(kid, ctr)
      expect(decodeSFrameHeader(bytes)).toEqual({ kid, ctr, length: bytes.length })
    }
    expect(() => encodeSFrameHeader(1n << 64n, 0n)).toThrow(RangeError)
  })

  it("refuses empty and truncated headers with MalformedFrame", () => {
    for (const bytes of [new Uint8Array(0), Uint8Array.of(0x90), Uint8Array.of(0x0f, 1, 2, 3), Uint8Array.of(0xf8, 1, 2)])
      expect(() => decodeSFrameHeader(bytes)).toThrow(expect.objectContaining({ _tag: "MalformedFrame" }))
  })
})

describe("SFrame sender and receiver", () => {
  it("round-trip empty, small and multi-block frames, with and without metadata, in all eight suites", async () => {
    for (const suite of SFRAME_CIPHER_SUITES.keys()) {
      const { sender, receiver } = await pair(suite as SFrameCipherSuiteId)
      const nt = SFRAME_CIPHER_SUITES.get(suite)!.nt
      for (const [size, metadata] of [[0, undefined], [1, undefined], [1000, undefined], [50_000, Uint8Array.of(9, 9)]] as const) {
        const pt = frame(size)
        const ct = await sender.encrypt(pt, metadata)
        expect(ct.byteOffset === 0 && ct.buffer.byteLength === ct.length).toBe(true)
        expect(ct.length).toBe(decodeSFrameHeader(ct).length + size + nt)
        expect(await receiver.decrypt(ct, metadata)).toEqual(pt)
      }
    }
  })

  it("0x0006 matches an independent node:crypto computation of RFC 9605's construction", async () => {
    const sender = await SFrameSender.create({ suite: 0x0006, kid: 300n, baseKey, initialCounter: 70_000n })
    const pt = frame(5000, 7)
    const ct = await sender.encrypt(pt)
    // Reference: HKDF-SHA-512, AES-256-CTR, HMAC-SHA-512 truncated to 10 bytes, straight from the RFC text.
    const info = (label: string) => Buffer.concat([Buffer.from(label), Buffer.from("000000000000012c0006", "hex")])
    const key = Buffer.from(hkdfSync("sha512", baseKey, Buffer.alloc(0), info("SFrame 1.0 Secret key "), 96))
    const salt = Buffer.from(hkdfSync("sha512", baseKey, Buffer.alloc(0), info("SFrame 1.0 Secret salt "), 12))
    const nonce = Buffer.from(salt)
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ 70_000) >>> 0, 8)
    // X=1 with a 2-byte KID (0x012c), Y=1 with a 3-byte CTR (0x011170).
    const header = Buffer.from("9a012c011170", "hex")
    const cipher = createCipheriv("aes-256-ctr", key.subarray(0, 32), Buffer.concat([nonce, Buffer.alloc(4)]))
    const body = Buffer.concat([cipher.update(pt), cipher.final()])
    const lengths = Buffer.alloc(24)
    lengths.writeBigUInt64BE(BigInt(header.length), 0)
    lengths.writeBigUInt64BE(BigInt(body.length), 8)
    lengths.writeBigUInt64BE(10n, 16)
    const tag = createHmac("sha512", key.subarray(32)).update(Buffer.concat([lengths, nonce, header, body])).digest()
    expect(Buffer.from(ct).toString("hex")).toBe(Buffer.concat([header, body, tag.subarray(0, 10)]).toString("hex"))
  })

  it("node:crypto and WebCrypto engines make identical frames and open each other's, in all eight suites", async () => {
    for (const suite of SFRAME_CIPHER_SUITES.keys()) {
      const id = suite as SFrameCipherSuiteId
      const senders = await Promise.all(
        (["node-crypto", "webcrypto"] as const).map((engine) => SFrameSender.create({ suite: id, kid: 3n, baseKey, engine }))
      )
      const receivers = (["webcrypto", "node-crypto"] as const).map((engine) => new SFrameReceiver({ suite: id, engine }))
      for (const r of receivers) await r.addKey(3n, baseKey)
      for (const [size, metadata] of [[0, new Uint8Array(0)], [33, Uint8Array.of(1, 2, 3)], [70_000, new Uint8Array(0)]] as const) {
        const pt = frame(size, size)
        const [fromNode, fromWeb] = await Promise.all(senders.map((s) => s.encrypt(pt, metadata)))
        expect(Buffer.from(fromNode!).equals(Buffer.from(fromWeb!))).toBe(true)
        expect(await receivers[0]!.decrypt(fromNode!, metadata)).toEqual(pt)
        expect(await receivers[1]!.decrypt(fromWeb!, metadata)).toEqual(pt)
        // A fresh frame from each engine with a flipped tag bit: refused by the other engine.
        const next = await Promise.all(senders.map((s) => s.encrypt(pt, metadata)))
        for (const [i, r] of receivers.entries()) {
          const forged = next[i]!.slice()
          forged[forged.length - 1]! ^= 1
          expect(await tagOf(r.decrypt(forged, metadata))).toBe("FrameAuthenticationFailed")
        }
      }
    }
  })

  it("gives concurrent encryptions distinct counters", async () => {
    const { sender, receiver } = await pair(0x0006)
    const cts = await Promise.all(Array.from({ length: 20 }, (_, i) => sender.encrypt(frame(100, i))))
    expect(new Set(cts.map((c) => decodeSFrameHeader(c).ctr)).size).toBe(20)
    expect(sender.counter).toBe(20n)
    for (const [i, c] of cts.entries()) expect(await receiver.decrypt(c)).toEqual(frame(100, i))
  })

  it("accepts late frames inside the window once, refuses duplicates and frames behind the window", async () => {
    const { sender, receiver } = await pair(0x0006, 5n, 16)
    const cts = []
    for (let i = 0; i < 40; i++) cts.push(await sender.encrypt(frame(10, i)))
    await receiver.decrypt(cts[30]!)
    expect(await tagOf(receiver.decrypt(cts[30]!))).toBe("ReplayedFrame")
    expect(await receiver.decrypt(cts[20]!)).toEqual(frame(10, 20)) // 10 behind: inside a 16-frame window
    expect(await tagOf(receiver.decrypt(cts[20]!))).toBe("ReplayedFrame")
    expect(await tagOf(receiver.decrypt(cts[14]!))).toBe("ReplayedFrame") // 16 behind: too old
    await receiver.decrypt(cts[39]!)
    expect(await tagOf(receiver.decrypt(cts[22]!))).toBe("ReplayedFrame") // now 17 behind
    expect(await receiver.decrypt(cts[31]!)).toEqual(frame(10, 31))
  })

  it("lets only one of two concurrent decryptions of the same frame through", async () => {
    const { sender, receiver } = await pair(0x0006)
    const ct = await sender.encrypt(frame(20_000))
    const outcomes = await Promise.all([tagOf(receiver.decrypt(ct)), tagOf(receiver.decrypt(ct))])
    expect(outcomes.sort()).toEqual(["ReplayedFrame", "resolved"])
  })

  it("refuses tampered frames, wrong metadata and unknown key ids with typed errors, and keeps the window", async () => {
    for (const suite of [0x0004, 0x0005, 0x0006, 0x0008] as const) {
      const { sender, receiver } = await pair(suite)
      const ct = await sender.encrypt(frame(300), Uint8Array.of(1))
      for (const index of [0, 3, ct.length - 1]) {
        const bad = ct.slice()
        bad[index]! ^= 0x40
        expect(["FrameAuthenticationFailed", "UnknownKeyId", "ReplayedFrame"]).toContain(await tagOf(receiver.decrypt(bad, Uint8Array.of(1))))
      }
      expect(await tagOf(receiver.decrypt(ct, Uint8Array.of(2)))).toBe("FrameAuthenticationFailed")
      expect(await tagOf(receiver.decrypt(ct.subarray(0, 3)))).toMatch(/MalformedFrame|FrameAuthenticationFailed/)
      // None of the forgeries consumed the counter: the genuine frame still opens.
      expect(await receiver.decrypt(ct, Uint8Array.of(1))).toEqual(frame(300))
      const stranger = await SFrameSender.create({ suite, kid: 6n, baseKey })
      expect(await tagOf(receiver.decrypt(await stranger.encrypt(frame(5))))).toBe("UnknownKeyId")
      const wrongKey = await SFrameSender.create({ suite, kid: 5n, baseKey: baseKey.map((b) => b ^ 1), initialCounter: 1n })
      expect(await tagOf(receiver.decrypt(await wrongKey.encrypt(frame(5))))).toBe("FrameAuthenticationFailed")
    }
  })

  it("fails closed after destroy and after a key is removed", async () => {
    const { sender, receiver } = await pair(0x0006)
    const ct = await sender.encrypt(frame(10))
    receiver.removeKey(5n)
    expect(await tagOf(receiver.decrypt(ct))).toBe("UnknownKeyId")
    sender.destroy()
    expect(await tagOf(sender.encrypt(frame(10)))).toBe("KeysDestroyed")
    receiver.destroy()
    expect(await tagOf(receiver.decrypt(ct))).toBe("KeysDestroyed")
    expect(await tagOf(receiver.addKey(5n, baseKey))).toBe("KeysDestroyed")
  })

  it("stops at the end of the counter space", async () => {
    const sender = await SFrameSender.create({ kid: 1n, baseKey, initialCounter: (1n << 64n) - 1n })
    await sender.encrypt(frame(1))
    expect(await tagOf(sender.encrypt(frame(1)))).toBe("CounterExhausted")
  })
})
