/**
 * Host-led conferences in real headless Chromium against a real server process (one real mediasoup worker): a host
 * device and two customers' apps, each in its own browser context with a fake camera and microphone, the browser
 * SDK in each (conference-entry.ts). The host secures a call with each customer and distributes the conference's
 * epoch keys over it; everyone's media go through the conference's relay room under SFrame with those keys, and
 * each page sorts the tracks it receives by the sender slot in their authenticated key ids.
 *   - the host and customer A decode each other; customer B, attached late, decodes both and both decode B (the
 *     time from attach to B's first decoded frame is logged, not asserted: the Node test bounds it);
 *   - A leaves: a new epoch without A, A's keys and media are gone, the host and B decode on;
 *   - the host switches camera and mutes it: B decodes on (black frames while muted), no new join of the room;
 *   - a page without encoded transforms refuses the conference before it captures anything.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { BrowserContext, Page } from "playwright-core"
import { type BrowserPage, openBrowserPage } from "../support/browser.js"
import { enrollHostOn, startTestServer, type TestServer } from "../support/server.js"
import type { ConferenceDevicePageApi, ConferencePageReport, Outcome } from "./conference-entry.js"

declare const tesseraConferenceDevice: ConferenceDevicePageApi

const here = path.dirname(fileURLToPath(import.meta.url))
/** The server compiles with tsx and three pages make RSA-4096 keys: minutes are possible on a busy machine. */
const SETUP_MS = 400_000
const TEST_MS = 240_000
const DECODE_MS = 60_000
/** Ports of this file's relay worker, apart from the other test files' servers. */
const RTC_PORTS = { TESSERA_RTC_MIN_PORT: "47000", TESSERA_RTC_MAX_PORT: "47999" }
const CLEARTEXT = ["v=0", "a=fingerprint", "a=ice-ufrag", "ice-pwd", "candidate", "typ host", "iceParameters", "ConferenceKey"]

let serverScope: Scope.CloseableScope
let server: TestServer
let browser: BrowserPage
let host: Page
let anna: Page
let ben: Page
const customerIds: Record<"anna" | "ben", string> = { anna: "", ben: "" }
const contexts: Array<BrowserContext> = []

const done = <A extends object>(outcome: Outcome<A>, what: string): A => {
  if ("error" in outcome) throw new Error(`${what} failed: ${outcome.error}`)
  return outcome
}

const report = (page: Page): Promise<ConferencePageReport> => page.evaluate(() => tesseraConferenceDevice.report())
const slotsOf = (r: ConferencePageReport) => r.participants.map((p) => p.slot)
const decodedFrom = (page: Page, slot: number) =>
  report(page).then((r) => r.participants.find((p) => p.slot === slot)?.framesDecoded ?? 0)

/** What the test prints of a page: slots seen, epoch, frames decoded per slot. */
const summary = (name: string, r: ConferencePageReport) =>
  `${name}: epoch ${r.epoch ?? "-"}, slot ${r.slot ?? "-"}, sees ${
    r.participants.map((p) => `slot ${p.slot} [${p.kinds.join("+")}] ${p.framesDecoded} frames decoded`).join(", ") || "nobody"
  }${r.state.failure ? `, ended (${r.state.failure})` : ""}`

/** The page decodes video from each of these slots, and keeps decoding it. */
const decodesEach = async (page: Page, slots: ReadonlyArray<number>) => {
  for (const slot of slots) {
    await expect.poll(() => decodedFrom(page, slot), { timeout: DECODE_MS, interval: 250 }).toBeGreaterThan(0)
    const before = await decodedFrom(page, slot)
    await expect.poll(() => decodedFrom(page, slot), { timeout: DECODE_MS, interval: 250 }).toBeGreaterThan(before + 10)
  }
}

/** The host calls the customer, the customer answers; both secured with the same safety code. */
const securedCall = async (customer: Page, name: "anna" | "ben") => {
  const [atHost, atCustomer] = await Promise.all([
    host.evaluate((id) => tesseraConferenceDevice.callAndSecure(id), customerIds[name]),
    customer.evaluate(() => tesseraConferenceDevice.answerAndSecure())
  ])
  expect(done(atHost, "the host's call").safetyCode).toBe(done(atCustomer, "the customer's call").safetyCode)
}

/** The host attaches the customer's call; the customer joins once it hears of it. Returns the attach time. */
const bringIn = async (customer: Page, name: "anna" | "ben") => {
  const joining = customer.evaluate(() => tesseraConferenceDevice.joinWhenAttached())
  const attached = await host.evaluate((id) => tesseraConferenceDevice.attach(id), customerIds[name])
  done(await joining, `${name} joining`)
  return done(attached, `attaching ${name}`).attachedAt
}

const awaitEpoch = (page: Page, epoch: number) =>
  expect.poll(() => report(page).then((r) => r.epoch), { timeout: DECODE_MS, interval: 250 }).toBe(epoch)

beforeAll(async () => {
  serverScope = Effect.runSync(Scope.make())
  ;[server, browser] = await Promise.all([
    Effect.runPromise(Scope.extend(startTestServer(RTC_PORTS), serverScope)),
    openBrowserPage({ entry: path.join(here, "conference-entry.ts") })
  ])
  const page = async () => {
    const context = await browser.browser.newContext()
    contexts.push(context)
    const p = await context.newPage()
    await p.goto(browser.origin + "/", { waitUntil: "load" })
    return p
  }
  ;[host, anna, ben] = await Promise.all([page(), page(), page()])
  const code = await Effect.runPromise(enrollHostOn(server.env))
  await host.evaluate(({ url, code }) => tesseraConferenceDevice.enrollHost(url, code), { url: server.url, code })
  for (const [name, customer] of [["anna", anna], ["ben", ben]] as const) {
    const { customerId, activationCode } = await host.evaluate((n) => tesseraConferenceDevice.addCustomer(n), name)
    customerIds[name] = customerId
    await customer.evaluate(({ url, code }) => tesseraConferenceDevice.activate(url, code), { url: server.url, code: activationCode })
    await host.evaluate((id) => tesseraConferenceDevice.awaitOnline(id), customerId)
  }
}, SETUP_MS)

afterAll(async () => {
  for (const p of [anna, ben, host]) await p?.evaluate(() => tesseraConferenceDevice.close()).catch(() => undefined)
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close()
  if (serverScope) await Effect.runPromise(Scope.close(serverScope, Exit.void))
})

describe("conferences in Chromium, SFrame under the conference's epoch keys", () => {
  it("the host leads, attaches customer A: each decodes the other, attributed to the other's slot", async () => {
    await securedCall(anna, "anna")
    done(await host.evaluate(() => tesseraConferenceDevice.lead()), "leading")
    expect((await report(host)).epoch).toBe(1)
    await bringIn(anna, "anna")
    for (const page of [host, anna]) {
      await awaitEpoch(page, 2)
      expect(await page.evaluate((ms) => tesseraConferenceDevice.awaitConnected(ms), DECODE_MS)).toEqual({ connected: true })
    }
    const [atHost, atAnna] = await Promise.all([report(host), report(anna)])
    expect([atHost.slot, atAnna.slot]).toEqual([0, 1])
    await decodesEach(host, [1])
    await decodesEach(anna, [0])
    for (const [page, other] of [[host, 1], [anna, 0]] as const) {
      const r = await report(page)
      expect(slotsOf(r)).toEqual([other])
      expect(r.participants[0]!.kinds).toEqual(["audio", "video"])
      expect(r.participants[0]!.audioPacketsReceived).toBeGreaterThan(0)
      expect(r.sent.video.protected).toBeGreaterThan(0)
      expect(r.sent.audio.protected).toBeGreaterThan(0)
      expect(r.received.video.protected).toBeGreaterThan(0)
      expect(r.received.audio.protected).toBeGreaterThan(0)
    }
    console.info(["two parties", summary("host", await report(host)), summary("A", await report(anna))].join("\n  "))
  }, TEST_MS)

  it("customer B joins late: B decodes the host and A, the host and A decode B", async () => {
    await securedCall(ben, "ben")
    const attachedAt = await bringIn(ben, "ben")
    const decoding = await ben.evaluate((ms) => tesseraConferenceDevice.awaitDecoding(2, ms), DECODE_MS)
    expect(decoding.all).toBeDefined()
    console.info(
      `late joiner: first decoded frame ${decoding.first! - attachedAt} ms after attach, both others ${decoding.all! - attachedAt} ms`
    )
    for (const page of [host, anna, ben]) await awaitEpoch(page, 3)
    expect((await report(ben)).slot).toBe(2)
    await decodesEach(ben, [0, 1])
    await decodesEach(host, [1, 2])
    await decodesEach(anna, [0, 2])
    const reports = await Promise.all([report(host), report(anna), report(ben)])
    expect(reports.map(slotsOf)).toEqual([[1, 2], [0, 2], [0, 1]])
    for (const r of reports) for (const p of r.participants) expect(p.kinds).toEqual(["audio", "video"])
    console.info(["three parties", summary("host", reports[0]!), summary("A", reports[1]!), summary("B", reports[2]!)].join("\n  "))
  }, TEST_MS)

  it("customer A leaves: a new epoch without A, A's keys and media are gone, the host and B decode each other on", async () => {
    await anna.evaluate(() => tesseraConferenceDevice.leave())
    await expect.poll(() => report(anna).then((r) => r.state), { timeout: DECODE_MS, interval: 250 })
      .toEqual({ connection: "closed", failure: "left" })
    const gone = await report(anna)
    expect(gone.epoch).toBeUndefined()
    expect(gone.liveLocalTracks).toBe(0)
    expect(gone.participants).toEqual([])

    for (const page of [host, ben]) await awaitEpoch(page, 4)
    await expect.poll(() => report(host).then(slotsOf), { timeout: DECODE_MS, interval: 250 }).toEqual([2])
    await expect.poll(() => report(ben).then(slotsOf), { timeout: DECODE_MS, interval: 250 }).toEqual([0])
    await decodesEach(host, [2])
    await decodesEach(ben, [0])
    // Nothing more reaches A: its received figures stand still.
    const later = await report(anna)
    expect(later.received).toEqual(gone.received)
    console.info(["after A left", summary("host", await report(host)), summary("A", later), summary("B", await report(ben))].join("\n  "))

    const printed = server.stdout() + server.stderr()
    for (const text of CLEARTEXT) expect(printed).not.toContain(text)
  }, TEST_MS)

  it("the host switches camera and mutes it: B decodes on, with no new join of the room", async () => {
    const before = await report(host)
    done(await host.evaluate(() => tesseraConferenceDevice.switchCamera()), "switching camera")
    await host.evaluate(() => tesseraConferenceDevice.setMuted("video", true))
    const after = await report(host)
    expect(after.cameraTrack).not.toBe(before.cameraTrack)
    expect(after.liveLocalTracks).toBe(2)
    expect(after.muted).toEqual({ audio: false, video: true })
    await decodesEach(ben, [0])
    await host.evaluate(() => tesseraConferenceDevice.setMuted("video", false))
    await decodesEach(ben, [0])
    const sent = await report(host)
    expect(sent.sent.video.protected).toBeGreaterThan(after.sent.video.protected)
    expect(sent.relayJoins).toBe(1)
  }, TEST_MS)

  it("a page without encoded transforms refuses the conference with EncodedTransformUnsupported before capturing", async () => {
    const refused = await anna.evaluate(() => tesseraConferenceDevice.startWithoutEncodedTransform())
    expect(refused).toEqual({ outcome: { error: "EncodedTransformUnsupported" }, captures: 0 })
  }, TEST_MS)
})
