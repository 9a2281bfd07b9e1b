/**
 * Peer-to-peer calls in real headless Chromium (fake camera and microphone), SFrame suite 0x0006 on every frame:
 * two parties in two browser contexts run the call handshake, then the SDK's call media (src/sdk/media) with its
 * offers, answers and candidates sealed under the call's keys and relayed by this test, which stands in for the
 * server and sees only ciphertext. Both sides decode video; a receiver with the wrong key decodes nothing; a
 * browser without encoded transforms is refused before anything is captured or sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { BrowserContext, Page } from "playwright-core"
import { fromHex, toHex } from "../../src/crypto/bytes.js"
import { exportIdentityPrivateKey, generateIdentityKeyPair } from "../../src/crypto/identity.js"
import type { CallMediaStats } from "../../src/sdk/media/index.js"
import { openBrowserPage, type BrowserPage } from "../support/browser.js"
import type { CallPageApi, Party, StartCall } from "./call-entry.js"

declare const tesseraCall: CallPageApi

const here = path.dirname(fileURLToPath(import.meta.url))
/** Two pages encoding, encrypting and decoding video on a busy two-core machine: be patient, but bounded. */
const FIRST_FRAME_MS = 20_000
const CALL_TEST_MS = 120_000

interface Identity {
  readonly pkcs8: string
  readonly spki: string
}

interface Side {
  readonly name: "caller" | "callee"
  readonly context: BrowserContext
  readonly page: Page
  /** The sealed records this side sent, as the relay saw them. */
  readonly relayed: Array<string>
  readonly pageErrors: Array<string>
}

let browser: BrowserPage
let identities: { readonly caller: Identity; readonly callee: Identity }
/** Figures for the report: the handshake, and from "call" (the caller starting its media) to the first decoded frame. */
const measured: Array<Record<string, number | undefined>> = []

beforeAll(async () => {
  const make = async (): Promise<Identity> => {
    const pair = await generateIdentityKeyPair({ extractable: true })
    return { pkcs8: toHex(await exportIdentityPrivateKey(pair)), spki: toHex(pair.publicKeySpki) }
  }
  const [opened, caller, callee] = await Promise.all([openBrowserPage({ entry: path.join(here, "call-entry.ts") }), make(), make()])
  browser = opened
  identities = { caller, callee }
})

afterAll(async () => {
  await browser?.close()
  if (measured.length > 0) console.info(`call timings (ms): ${JSON.stringify(measured)}`)
})

const openSide = async (name: Side["name"]): Promise<Side> => {
  const context = await browser.browser.newContext()
  const page = await context.newPage()
  const pageErrors: Array<string> = []
  page.on("pageerror", (e) => pageErrors.push(e.message))
  await page.goto(browser.origin + "/", { waitUntil: "load" })
  const identity = identities[name]
  await page.evaluate(({ pkcs8, spki }) => tesseraCall.importIdentity(pkcs8, spki), identity)
  return { name, context, page, relayed: [], pageErrors }
}

/** Each side's sealed records go to the other page, one after another, in the order they were sent. */
const relayBetween = async (a: Side, b: Side) => {
  const wire = async (from: Side, to: Side) => {
    let delivered = Promise.resolve()
    await from.page.exposeFunction("tesseraRelay", (record: string) => {
      from.relayed.push(record)
      delivered = delivered.then(() => to.page.evaluate((r) => tesseraCall.deliver(r), record))
      return delivered
    })
  }
  await Promise.all([wire(a, b), wire(b, a)])
}

/** Two parties that completed the call handshake (same safety code) and relay each other's sealed records. */
const twoParties = async () => {
  const [caller, callee] = await Promise.all([openSide("caller"), openSide("callee")])
  await relayBetween(caller, callee)
  const callId = `call-${Math.random().toString(16).slice(2)}`
  const handshakeStarted = Date.now()
  const asCaller: Party = { callId, selfId: "host:1", peerId: "customer:1", peerSpki: identities.callee.spki }
  const asCallee: Party = { callId, selfId: "customer:1", peerId: "host:1", peerSpki: identities.caller.spki }
  const offer = await caller.page.evaluate((p) => tesseraCall.startHandshake(p), asCaller)
  const answer = await callee.page.evaluate(({ p, o }) => tesseraCall.respond(p, o), { p: asCallee, o: offer })
  const confirm = await caller.page.evaluate((a) => tesseraCall.receiveAnswer(a), answer)
  await callee.page.evaluate((c) => tesseraCall.receiveConfirm(c), confirm)
  const codes = await Promise.all([caller, callee].map((s) => s.page.evaluate(() => tesseraCall.safetyCode())))
  expect(codes[0]).toBe(codes[1])
  return { caller, callee, handshakeMs: Date.now() - handshakeStarted }
}

const startCall = (side: Side, options: Omit<StartCall, "role"> = {}) =>
  side.page.evaluate((o) => tesseraCall.startCall(o), { ...options, role: side.name })

/**
 * The callee first, so the caller's offer finds it listening; then the caller, which is "pressing call". Yields
 * when the caller started (Date.now in its page).
 */
const call = async (caller: Side, callee: Side, calleeOptions: Omit<StartCall, "role"> = {}): Promise<number> => {
  expect(await startCall(callee, calleeOptions)).toMatchObject({ startedAt: expect.any(Number) })
  const started = await startCall(caller)
  if (!("startedAt" in started)) throw new Error(`the caller's media did not start: ${started.error}`)
  return started.startedAt
}

const stats = (side: Side): Promise<CallMediaStats> => side.page.evaluate(() => tesseraCall.stats())

const decoded = (side: Side) => stats(side).then((s) => s.video.framesDecoded)

const closeSides = async (...sides: ReadonlyArray<Side>) => {
  for (const side of sides) {
    await side.page.evaluate(() => tesseraCall.hangUp()).catch(() => undefined)
    await side.context.close().catch(() => undefined)
  }
}

/** What the relay carried, read as text: neither SDP nor candidates may be visible in it. */
const relayedText = (...sides: ReadonlyArray<Side>) =>
  sides.flatMap((s) => s.relayed).map((hex) => new TextDecoder("latin1").decode(fromHex(hex))).join("\n")

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("peer-to-peer call in Chromium, SFrame 0x0006", () => {
  it("both sides decode each other's video; every frame went through SFrame; the relay saw only ciphertext", async () => {
    const { caller, callee, handshakeMs } = await twoParties()
    try {
      const started = await call(caller, callee)
      const [callerFirst, calleeFirst] = await Promise.all(
        [caller, callee].map((s) => s.page.evaluate((ms) => tesseraCall.firstDecodedFrame(ms), FIRST_FRAME_MS))
      )
      expect(callerFirst).toBeDefined()
      expect(calleeFirst).toBeDefined()
      measured.push({ handshakeMs, callerFirstFrameMs: callerFirst! - started, calleeFirstFrameMs: calleeFirst! - started })
      for (const side of [caller, callee]) {
        expect(await side.page.evaluate(() => tesseraCall.awaitConnected())).toBe("connected")
        const s = await stats(side)
        expect(s).toMatchObject({ mode: "p2p", sframeSuite: 0x0006, connectionState: "connected" })
        expect(s.video.framesDecoded).toBeGreaterThan(0)
        expect(s.sent.video.protected).toBeGreaterThan(0)
        expect(s.sent.audio.protected).toBeGreaterThan(0)
        expect(s.received.video.protected).toBeGreaterThan(0)
        expect(s.received.audio.protected).toBeGreaterThan(0)
        expect(s.received.video.dropped + s.received.audio.dropped).toBe(0)
        expect(s.signals.rejected).toBe(0)
      }
      // Frames keep coming.
      const before = await decoded(callee)
      await expect.poll(() => decoded(callee), { timeout: 10_000, interval: 250 }).toBeGreaterThan(before + 10)
      const seen = relayedText(caller, callee)
      expect(caller.relayed.length + callee.relayed.length).toBeGreaterThan(2)
      for (const plain of ["v=0", "a=fingerprint", "a=ice-ufrag", "candidate", "MediaOffer"]) expect(seen).not.toContain(plain)
      expect([...caller.pageErrors, ...callee.pageErrors]).toEqual([])
    } finally {
      await closeSides(caller, callee)
    }
  }, CALL_TEST_MS)

  it("mute and camera switch without renegotiation, ICE restart from either side, and the call goes on", async () => {
    const { caller, callee } = await twoParties()
    try {
      await call(caller, callee)
      await expect.poll(() => decoded(callee), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(0)
      await expect.poll(() => callee.page.evaluate(() => tesseraCall.remoteBrightness()), { timeout: 10_000, interval: 500 })
        .toBeGreaterThan(60)

      // Camera muted: the peer sees black; unmuted: the picture is back. No signalling for either.
      const negotiations = () => Promise.all([stats(caller), stats(callee)]).then((both) => both.map((s) => s.negotiations))
      expect(await negotiations()).toEqual([1, 1])
      const signalsBefore = caller.relayed.length + callee.relayed.length
      await caller.page.evaluate(() => tesseraCall.setMuted("video", true))
      await expect.poll(() => callee.page.evaluate(() => tesseraCall.remoteBrightness()), { timeout: 10_000, interval: 500 })
        .toBeLessThan(30)
      await caller.page.evaluate(() => tesseraCall.setMuted("video", false))
      await expect.poll(() => callee.page.evaluate(() => tesseraCall.remoteBrightness()), { timeout: 10_000, interval: 500 })
        .toBeGreaterThan(60)

      // Another camera track replaces the first; frames keep being decoded, and nothing was renegotiated.
      const firstTrack = await caller.page.evaluate(() => tesseraCall.localVideoTrackId())
      expect(await caller.page.evaluate(() => tesseraCall.switchCamera())).toBe("switched")
      expect(await caller.page.evaluate(() => tesseraCall.localVideoTrackId())).not.toBe(firstTrack)
      const afterSwitch = await decoded(callee)
      await expect.poll(() => decoded(callee), { timeout: 10_000, interval: 250 }).toBeGreaterThan(afterSwitch + 10)
      expect(await negotiations()).toEqual([1, 1])

      // ICE restart by the caller, then one asked for by the callee: new ICE credentials each time, media flows.
      await caller.page.evaluate(() => tesseraCall.restartIce())
      for (const side of [caller, callee]) {
        await expect.poll(() => stats(side).then((s) => s.iceRestarts), { timeout: 15_000, interval: 250 }).toBe(1)
      }
      await callee.page.evaluate(() => tesseraCall.restartIce())
      for (const side of [caller, callee]) {
        await expect.poll(() => stats(side).then((s) => s.iceRestarts), { timeout: 15_000, interval: 250 }).toBe(2)
      }
      // The network changes under the callee (the browser comes back online): an ICE restart without user action.
      await callee.page.evaluate(() => window.dispatchEvent(new Event("online")))
      for (const side of [caller, callee]) {
        await expect.poll(() => stats(side).then((s) => s.iceRestarts), { timeout: 15_000, interval: 250 }).toBe(3)
      }
      expect(await negotiations()).toEqual([4, 4])
      expect(caller.relayed.length + callee.relayed.length).toBeGreaterThan(signalsBefore)
      for (const side of [caller, callee]) {
        await expect.poll(() => stats(side).then((s) => s.connectionState), { timeout: 15_000, interval: 250 }).toBe("connected")
        const now = await decoded(side)
        await expect.poll(() => decoded(side), { timeout: 10_000, interval: 250 }).toBeGreaterThan(now + 10)
        const s = await stats(side)
        expect(s.received.video.dropped + s.received.audio.dropped).toBe(0)
        expect(s.signals.rejected).toBe(0)
      }
      expect([...caller.pageErrors, ...callee.pageErrors]).toEqual([])
    } finally {
      await closeSides(caller, callee)
    }
  }, CALL_TEST_MS)

  it("a receiver with the wrong key decodes no frame, while the sender sends and the other direction decodes", async () => {
    const { caller, callee } = await twoParties()
    try {
      await call(caller, callee, { wrongReceiveKey: true })
      // The callee's own frames are fine: the caller decodes them, so the path is up and media flows.
      await expect.poll(() => decoded(caller), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(0)
      const sentBefore = await stats(caller)
      expect(sentBefore.video.framesEncoded).toBeGreaterThan(0)
      await sleep(5_000)
      const sender = await stats(caller)
      const receiver = await stats(callee)
      expect(sender.video.framesEncoded).toBeGreaterThan(sentBefore.video.framesEncoded)
      expect(sender.video.packetsSent).toBeGreaterThan(sentBefore.video.packetsSent)
      expect(receiver.video.packetsReceived).toBeGreaterThan(0)
      expect(receiver.received.video.dropped).toBeGreaterThan(0)
      expect(receiver.received.audio.dropped).toBeGreaterThan(0)
      expect(receiver.received.video.protected).toBe(0)
      expect(receiver.received.audio.protected).toBe(0)
      expect(receiver.video.framesDecoded).toBe(0)
      expect(receiver.audio.totalAudioEnergy).toBe(0)
    } finally {
      await closeSides(caller, callee)
    }
  }, CALL_TEST_MS)

  it("once a side's keys are destroyed it sends no more frames, in clear or otherwise", async () => {
    const { caller, callee } = await twoParties()
    try {
      await call(caller, callee)
      await expect.poll(() => decoded(callee), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(0)
      await caller.page.evaluate(() => tesseraCall.destroyKeys())
      await sleep(1_000)
      const [senderBefore, receiverBefore] = await Promise.all([stats(caller), stats(callee)])
      await sleep(3_000)
      const [sender, receiver] = await Promise.all([stats(caller), stats(callee)])
      expect(sender.sent.video.dropped).toBeGreaterThan(senderBefore.sent.video.dropped)
      expect(sender.sent.video.protected).toBe(senderBefore.sent.video.protected)
      expect(sender.sent.audio.protected).toBe(senderBefore.sent.audio.protected)
      expect(receiver.video.framesDecoded).toBe(receiverBefore.video.framesDecoded)
      expect(receiver.received.video.protected).toBe(receiverBefore.received.video.protected)
    } finally {
      await closeSides(caller, callee)
    }
  }, CALL_TEST_MS)

  it("a browser without encoded transforms is refused with EncodedTransformUnsupported before anything is captured or sent; the peer is told", async () => {
    const { caller, callee } = await twoParties()
    try {
      await caller.page.evaluate(() => tesseraCall.removeEncodedTransforms())
      expect(await startCall(caller)).toEqual({ error: "EncodedTransformUnsupported" })
      expect(await caller.page.evaluate(() => tesseraCall.touched)).toEqual({ peerConnections: 0, captures: 0 })
      // One sealed record went out, the refusal; no SDP, no candidates.
      expect(caller.relayed).toHaveLength(1)
      expect(relayedText(caller)).not.toMatch(/v=0|candidate|MediaFailed/)
      // The peer's media end at once with the reason, instead of waiting for an offer that will not come.
      expect(await startCall(callee)).toMatchObject({ startedAt: expect.any(Number) })
      expect(await callee.page.evaluate(() => tesseraCall.awaitConnected())).toBe("peer-failed/frame-protection")
      expect(await stats(callee)).toMatchObject({ connectionState: "closed", negotiations: 0 })
    } finally {
      await closeSides(caller, callee)
    }
  }, CALL_TEST_MS)
})
