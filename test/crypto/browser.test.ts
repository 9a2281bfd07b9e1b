/**
 * The same crypto in real headless Chromium: every vector suite, BigInt DH against node:crypto, and call handshakes
 * with one side in Node and the other in the page (messages carried through page.evaluate as hex), after which
 * both sides show the same safety code and open each other's signalling records and SFrame frames.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { fromHex, toHex, utf8Bytes } from "../../src/crypto/bytes.js"
import { respondToOffer, startCallerHandshake } from "../../src/crypto/handshake.js"
import { generateIdentityKeyPair, type IdentityKeyPair } from "../../src/crypto/identity.js"
import { nodeModpBackend } from "../../src/crypto/modp-node.js"
import { computeSharedSecret, generateEphemeral, MODP_GROUP_14, MODP_GROUP_15 } from "../../src/crypto/modp.js"
import { SFrameReceiver } from "../../src/crypto/sframe.js"
import type * as Crypto from "../../src/crypto/index.js"
import { openBrowserPage, type BrowserPage } from "../support/browser.js"
import { CHROMIUM_UNSUPPORTED_AES_GCM, expectedUnsupportedAesGcm } from "./expected-unsupported.js"
import { AES256_CTR_HMAC_SFRAME_FILE, readVectorText, SHARED_SFRAME_FILE, wycheproofTexts } from "./vector-files.js"
import type { runWycheproof, WycheproofReports } from "./wycheproof-suites.js"

/** What browser-entry.ts puts on the page's globalThis. */
type PageApi = typeof Crypto & { readonly runWycheproof: typeof runWycheproof; readonly state: Record<string, any> }
declare const tessera: PageApi

const here = path.dirname(fileURLToPath(import.meta.url))
let browser: BrowserPage
let nodeIdentity: IdentityKeyPair
let pageSpki: Uint8Array

beforeAll(async () => {
  ;[browser, nodeIdentity] = await Promise.all([
    openBrowserPage({ entry: path.join(here, "browser-entry.ts") }),
    generateIdentityKeyPair()
  ])
  // The page's identity key is generated in the page, non-extractable, as the web apps do.
  pageSpki = fromHex(
    await browser.page.evaluate(async () => {
      const identity = await tessera.generateIdentityKeyPair({ extractable: false })
      tessera.state["identity"] = identity
      return tessera.toHex(identity.publicKeySpki)
    })
  )
})

afterAll(async () => {
  await browser?.close()
})

describe("vector suites in Chromium", () => {
  it("Wycheproof AES-GCM, HKDF, HMAC and RSA-PSS: every case; AES-192 (not in Chromium) rejected and listed", async () => {
    const texts = wycheproofTexts()
    const r: WycheproofReports = await browser.page.evaluate((t) => tessera.runWycheproof(t), texts)
    expect(r.aesGcm.failures).toEqual([])
    expect(r.aesGcm.unsupported).toEqual(expectedUnsupportedAesGcm(texts.aesGcm, CHROMIUM_UNSUPPORTED_AES_GCM))
    expect(r.aesGcm.unsupported).toHaveLength(74)
    expect(r.aesGcm).toMatchObject({ total: 316, passed: 316 - 74, byResult: { valid: 229, invalid: 87 } })
    expect(r.hkdf).toEqual({ total: 86, passed: 86, byResult: { valid: 83, invalid: 3 }, failures: [], unsupported: [] })
    expect(r.hmac).toEqual({ total: 174, passed: 174, byResult: { valid: 66, invalid: 108 }, failures: [], unsupported: [] })
    expect(r.rsaPss).toEqual({ total: 108, passed: 108, byResult: { valid: 63, invalid: 45 }, failures: [], unsupported: [] })
  })

  it("SFrame: the RFC 9605 file and tessera's 0x0006-0x0008 file", async () => {
    const texts = [readVectorText(SHARED_SFRAME_FILE), readVectorText(AES256_CTR_HMAC_SFRAME_FILE)]
    const reports = await browser.page.evaluate((ts) => Promise.all(ts.map((t) => tessera.runSFrameKnownAnswers(t))), texts)
    expect(reports).toEqual([
      { passed: 297, failed: 0, failures: [] },
      { passed: 15, failed: 0, failures: [] }
    ])
  })
})

describe("Node and Chromium together", () => {
  it("the page uses BigInt DH, and it agrees with node:crypto in both groups", async () => {
    const node = nodeModpBackend()!
    for (const group of [MODP_GROUP_15, MODP_GROUP_14]) {
      const mine = generateEphemeral(group, node)
      const fromPage = await browser.page.evaluate(
        ({ name, peer }) => {
          const g = name === "modp15" ? tessera.MODP_GROUP_15 : tessera.MODP_GROUP_14
          const backend = tessera.defaultModpBackend()
          const pair = tessera.generateEphemeral(g, backend)
          const secret = tessera.computeSharedSecret(pair, tessera.fromHex(peer), backend)
          return { backend: backend.name, publicValue: tessera.toHex(pair.publicValue), secret: tessera.toHex(secret) }
        },
        { name: group.name, peer: toHex(mine.publicValue) }
      )
      expect(fromPage.backend).toBe("bigint")
      expect(toHex(computeSharedSecret(mine, fromHex(fromPage.publicValue), node))).toBe(fromPage.secret)
    }
  })

  it("Node calls, Chromium answers: same safety code, signalling and SFrame both ways", async () => {
    const { offer, state } = await startCallerHandshake({
      callId: "interop-1",
      selfId: "node-side",
      selfIdentity: nodeIdentity,
      peerId: "page-side",
      peerPublicKeySpki: pageSpki
    })
    const answer = await browser.page.evaluate(
      async ({ offer, spki }) => {
        const { answer, state } = await tessera.respondToOffer({
          callId: "interop-1",
          selfId: "page-side",
          selfIdentity: tessera.state["identity"],
          peerId: "node-side",
          peerPublicKeySpki: tessera.fromHex(spki),
          offer: tessera.fromHex(offer)
        })
        tessera.state["callee"] = state
        return tessera.toHex(answer)
      },
      { offer: toHex(offer), spki: toHex(nodeIdentity.publicKeySpki) }
    )
    const { confirm, session } = await state.receiveAnswer(fromHex(answer))
    const sender = await session.createSFrameSender()
    const receiver = await session.createSFrameReceiver()
    const toPage = {
      confirm: toHex(confirm),
      record: toHex(await session.seal(utf8Bytes("v=0 offer from node"))),
      frame: toHex(await sender.encrypt(utf8Bytes("video frame from node")))
    }
    const fromPage = await browser.page.evaluate(async (m) => {
      const session = await tessera.state["callee"].receiveConfirm(tessera.fromHex(m.confirm))
      const text = new TextDecoder()
      const receiver = await session.createSFrameReceiver()
      const sender = await session.createSFrameSender()
      return {
        safetyCode: session.safetyCode as string,
        opened: text.decode(await session.open(tessera.fromHex(m.record))),
        frame: text.decode(await receiver.decrypt(tessera.fromHex(m.frame))),
        record: tessera.toHex(await session.seal(new TextEncoder().encode("v=0 answer from page"))),
        sframe: tessera.toHex(await sender.encrypt(new TextEncoder().encode("video frame from page")))
      }
    }, toPage)
    expect(fromPage.safetyCode).toBe(session.safetyCode)
    expect(fromPage.opened).toBe("v=0 offer from node")
    expect(fromPage.frame).toBe("video frame from node")
    expect(new TextDecoder().decode(await session.open(fromHex(fromPage.record)))).toBe("v=0 answer from page")
    expect(new TextDecoder().decode(await receiver.decrypt(fromHex(fromPage.sframe)))).toBe("video frame from page")
  })

  it("Chromium calls with group 14 allowed, Node answers (group 15 still preferred); a tampered Confirm fails typed", async () => {
    const offer = await browser.page.evaluate(async (spki) => {
      const { offer, state } = await tessera.startCallerHandshake({
        callId: "interop-2",
        selfId: "page-side",
        selfIdentity: tessera.state["identity"],
        peerId: "node-side",
        peerPublicKeySpki: tessera.fromHex(spki),
        allowCompatibilityGroup14: true
      })
      tessera.state["caller"] = state
      return tessera.toHex(offer)
    }, toHex(nodeIdentity.publicKeySpki))
    const callee = { callId: "interop-2", selfId: "node-side", selfIdentity: nodeIdentity, peerId: "page-side", peerPublicKeySpki: pageSpki }
    // Both allow group 14; the offer carries shares for 15 and 14, and the preferred group 15 is chosen.
    const { answer, state } = await respondToOffer({ ...callee, allowCompatibilityGroup14: true, offer: fromHex(offer) })
    const fromPage = await browser.page.evaluate(async (a) => {
      const { confirm, session } = await tessera.state["caller"].receiveAnswer(tessera.fromHex(a))
      return { confirm: tessera.toHex(confirm), safetyCode: session.safetyCode as string, suite: session.suiteName as string }
    }, toHex(answer))
    expect(fromPage.suite).toMatch(/^MODP3072_/)
    const tampered = fromHex(fromPage.confirm)
    tampered[tampered.length - 1]! ^= 1
    // A second callee state for the same offer takes the tampered Confirm, so the first can finish genuinely.
    const sameAnswerAgain = await respondToOffer({ ...callee, allowCompatibilityGroup14: true, offer: fromHex(offer) })
    await expect(sameAnswerAgain.state.receiveConfirm(tampered)).rejects.toMatchObject({ _tag: "BadSignature" })
    const session = await state.receiveConfirm(fromHex(fromPage.confirm))
    expect(session.safetyCode).toBe(fromPage.safetyCode)
  })

  it("the page fails typed on an impostor's Answer, and its AES-GCM SFrame frames open in Node", async () => {
    const spki = toHex(nodeIdentity.publicKeySpki)
    const offer = await browser.page.evaluate(async (s) => {
      const { offer, state } = await tessera.startCallerHandshake({
        callId: "interop-3",
        selfId: "page-side",
        selfIdentity: tessera.state["identity"],
        peerId: "node-side",
        peerPublicKeySpki: tessera.fromHex(s)
      })
      tessera.state["caller3"] = state
      return tessera.toHex(offer)
    }, spki)
    // Node answers as someone else (wrong identity): the page fails with BadSignature, as a typed error.
    const impostor = await generateIdentityKeyPair()
    const { answer } = await respondToOffer({
      callId: "interop-3",
      selfId: "node-side",
      selfIdentity: impostor,
      peerId: "page-side",
      peerPublicKeySpki: pageSpki,
      offer: fromHex(offer)
    })
    const tag = await browser.page.evaluate(
      (a) => tessera.state["caller3"].receiveAnswer(tessera.fromHex(a)).then(() => "resolved", (e: { _tag?: string }) => e._tag ?? "untyped"),
      toHex(answer)
    )
    expect(tag).toBe("BadSignature")
    // And the page's SFrame frames open in Node with the RFC suites too.
    const baseKey = new Uint8Array(32).fill(3)
    const frame = await browser.page.evaluate(async (k) => {
      const sender = await tessera.SFrameSender.create({ suite: 0x0005, kid: 9n, baseKey: tessera.fromHex(k) })
      return tessera.toHex(await sender.encrypt(new TextEncoder().encode("gcm frame")))
    }, toHex(baseKey))
    const receiver = new SFrameReceiver({ suite: 0x0005 })
    await receiver.addKey(9n, baseKey)
    expect(new TextDecoder().decode(await receiver.decrypt(fromHex(frame)))).toBe("gcm frame")
    expect(browser.pageErrors).toEqual([])
  })
})
