/**
 * The product's path for a peer-to-peer call, in real headless Chromium against a real server process on real
 * Postgres: a host device enrolls and creates a customer, the customer's app activates, both sign in through the
 * browser SDK; the host calls, the customer answers, both secure the call (handshake over `call.signal`) and run its
 * media with SFrame 0x0006, their offers, answers and candidates sealed over the server. Both sides decode video,
 * the safety codes agree, and what the server relayed and printed carries no SDP.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { BrowserContext, Page } from "playwright-core"
import type { CallMediaStats } from "../../src/sdk/media/index.js"
import { openBrowserPage, type BrowserPage } from "../support/browser.js"
import { enrollHostOn, startTestServer, type TestServer } from "../support/server.js"
import type { DevicePageApi } from "./device-entry.js"

declare const tesseraDevice: DevicePageApi

const here = path.dirname(fileURLToPath(import.meta.url))
const FIRST_FRAME_MS = 20_000
/** The server compiles with tsx and both pages make RSA-4096 keys: minutes are possible on a busy machine. */
const SETUP_MS = 240_000
const CLEARTEXT = ["v=0", "a=fingerprint", "a=ice-ufrag", "ice-pwd", "candidate", "typ host", "MediaOffer", "127.0.0.1"]

let serverScope: Scope.CloseableScope
let server: TestServer
let browser: BrowserPage
const contexts: Array<BrowserContext> = []

beforeAll(async () => {
  serverScope = Effect.runSync(Scope.make())
  ;[server, browser] = await Promise.all([
    Effect.runPromise(Scope.extend(startTestServer(), serverScope)),
    openBrowserPage({ entry: path.join(here, "device-entry.ts") })
  ])
}, SETUP_MS)

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close()
  if (serverScope) await Effect.runPromise(Scope.close(serverScope, Exit.void))
})

const devicePage = async (): Promise<Page> => {
  const context = await browser.browser.newContext()
  contexts.push(context)
  const page = await context.newPage()
  await page.goto(browser.origin + "/", { waitUntil: "load" })
  return page
}

const stats = (page: Page): Promise<CallMediaStats> => page.evaluate(() => tesseraDevice.stats())

describe("secured peer-to-peer call through the server, in Chromium", () => {
  it("host calls customer: the call is secured over the server, both sides decode video, the server saw no SDP", async () => {
    const code = await Effect.runPromise(enrollHostOn(server.env))
    const [host, customer] = await Promise.all([devicePage(), devicePage()])
    const { customerId, activationCode } = await host.evaluate(
      ({ url, code }) => tesseraDevice.enrollHost(url, code),
      { url: server.url, code }
    )
    await customer.evaluate(({ url, code }) => tesseraDevice.activate(url, code), { url: server.url, code: activationCode })

    const [atHost, atCustomer] = await Promise.all([
      host.evaluate((id) => tesseraDevice.call(id), customerId),
      customer.evaluate(() => tesseraDevice.answer())
    ])
    expect(atHost.safetyCode).toBe(atCustomer.safetyCode)
    const [hostFirst, customerFirst] = await Promise.all(
      [host, customer].map((page) => page.evaluate((ms) => tesseraDevice.firstDecodedFrame(ms), FIRST_FRAME_MS))
    )
    expect(hostFirst).toBeDefined()
    expect(customerFirst).toBeDefined()
    console.info(`secured call, first decoded frame (ms) after the invite and after the host's media start: ${
      JSON.stringify({
        afterInvite: { host: hostFirst! - atHost.invitedAt, customer: customerFirst! - atHost.invitedAt },
        afterMediaStart: { host: hostFirst! - atHost.startedAt, customer: customerFirst! - atHost.startedAt }
      })
    }`)

    for (const page of [host, customer]) {
      const s = await stats(page)
      expect(s).toMatchObject({ mode: "p2p", sframeSuite: 0x0006, connectionState: "connected", negotiations: 1 })
      expect(s.video.framesDecoded).toBeGreaterThan(0)
      expect(s.sent.video.protected).toBeGreaterThan(0)
      expect(s.received.video.protected).toBeGreaterThan(0)
      expect(s.received.video.dropped + s.received.audio.dropped).toBe(0)
      expect(s.signals.sent).toBeGreaterThan(0)
      expect(s.signals.rejected).toBe(0)
      const relayed = await page.evaluate(() => tesseraDevice.relayedToMe())
      expect(relayed.length).toBeGreaterThan(3)
      for (const text of CLEARTEXT) expect(relayed.join("\n")).not.toContain(text)
    }
    const printed = server.stdout() + server.stderr()
    for (const text of CLEARTEXT.filter((t) => t !== "127.0.0.1")) expect(printed).not.toContain(text)

    await Promise.all([host, customer].map((page) => page.evaluate(() => tesseraDevice.hangUp())))
  }, SETUP_MS)
})
