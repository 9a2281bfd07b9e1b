/**
 * Calls through the server's mediasoup relay, in real headless Chromium against a real server process: a host
 * device and a customer's app (browser SDK, signed in once) call each other, the call secured over `call.signal`,
 * its media with SFrame 0x0006 on every sender and receiver of the relay's transports.
 *   - forced relay: both sides decode; a receiver with the wrong key decodes nothing while the other side does;
 *   - forced relay with UDP blocked on one side: its transports reach the relay over TCP, both sides decode;
 *   - forced relay, the network changes under one side: it restarts ICE on its relay transports by itself (a burst
 *     of events is one restart), the other side on request, and both decode on;
 *   - auto with peer to peer blocked (TURN-only ICE and no TURN server, as behind a strict firewall): both sides
 *     fall back to the relay by themselves and decode; auto on an open network stays peer to peer;
 *   - a media worker crash mid-call: the server re-creates the room, both sides join again and decode on;
 *   - the relay unavailable (the worker killed and kept from restarting): both sides end with "relay-unavailable".
 * The server's worker binary is a wrapper script around the real one, so the last test can keep it from starting.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { BrowserContext, Page } from "playwright-core"
import { locateWorkerBinary } from "../../src/media/WorkerBinary.js"
import type { CallMediaStats } from "../../src/sdk/media/index.js"
import { openBrowserPage, type BrowserPage } from "../support/browser.js"
import { enrollHostOn, startTestServer, type TestServer } from "../support/server.js"
import type { CallOptions, CallOutcome, RelayDevicePageApi } from "./relay-entry.js"

declare const tesseraRelayDevice: RelayDevicePageApi

const here = path.dirname(fileURLToPath(import.meta.url))
const FIRST_FRAME_MS = 30_000
const CONNECT_MS = 45_000
/** The server compiles with tsx and both pages make RSA-4096 keys: minutes are possible on a busy machine. */
const SETUP_MS = 300_000
const CALL_TEST_MS = 150_000
/** ICE gives up on a transport whose worker is gone after its consent checks expire (~30 s), then a grace period. */
const RELAY_LOST_MS = 90_000
/** Ports of this file's relay worker, apart from the other test files' servers. */
const RTC_PORTS = { TESSERA_RTC_MIN_PORT: "44000", TESSERA_RTC_MAX_PORT: "44999" }
const CLEARTEXT = ["v=0", "a=fingerprint", "a=ice-ufrag", "ice-pwd", "candidate", "typ host", "MediaOffer", "iceParameters"]

let serverScope: Scope.CloseableScope
let server: TestServer
let browser: BrowserPage
let workerDir: string
let host: Page
let customer: Page
let customerId: string
const contexts: Array<BrowserContext> = []

/** A worker binary that is the real one, unless the test has blocked it (then it exits at once, as a broken one). */
const workerWrapper = (dir: string, real: string): string => {
  const wrapper = path.join(dir, "mediasoup-worker")
  writeFileSync(wrapper, `#!/bin/sh\n[ -e '${path.join(dir, "blocked")}' ] && exit 1\nexec '${real}' "$@"\n`)
  chmodSync(wrapper, 0o755)
  return wrapper
}

const parentOf = (pid: number): number | undefined => {
  try {
    // The command name may hold spaces and parentheses: the fields that follow come after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}

/** The mediasoup workers of this file's server: descendants of this process whose command is our wrapper's. */
const ownWorkers = (): Array<number> =>
  readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8")
    } catch {
      return false
    }
    if (!cmdline.includes("mediasoup-worker")) return false
    for (let p = parentOf(pid); p !== undefined && p > 1; p = parentOf(p)) if (p === process.pid) return true
    return false
  })

const killWorker = () => {
  const workers = ownWorkers()
  expect(workers).toHaveLength(1)
  process.kill(workers[0]!, "SIGKILL")
  return workers[0]!
}

beforeAll(async () => {
  workerDir = mkdtempSync(path.join(tmpdir(), "tessera-relay-worker-"))
  const real = await Effect.runPromise(locateWorkerBinary())
  serverScope = Effect.runSync(Scope.make())
  ;[server, browser] = await Promise.all([
    Effect.runPromise(Scope.extend(startTestServer({ ...RTC_PORTS, MEDIASOUP_WORKER_BIN: workerWrapper(workerDir, real.path) }), serverScope)),
    openBrowserPage({ entry: path.join(here, "relay-entry.ts") })
  ])
  const page = async () => {
    const context = await browser.browser.newContext()
    contexts.push(context)
    const p = await context.newPage()
    await p.goto(browser.origin + "/", { waitUntil: "load" })
    return p
  }
  ;[host, customer] = await Promise.all([page(), page()])
  const code = await Effect.runPromise(enrollHostOn(server.env))
  const enrolled = await host.evaluate(({ url, code }) => tesseraRelayDevice.enrollHost(url, code), { url: server.url, code })
  customerId = enrolled.customerId
  await customer.evaluate(({ url, code }) => tesseraRelayDevice.activate(url, code), { url: server.url, code: enrolled.activationCode })
  await host.evaluate((id) => tesseraRelayDevice.awaitOnline(id), customerId)
}, SETUP_MS)

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close()
  if (serverScope) await Effect.runPromise(Scope.close(serverScope, Exit.void))
  if (workerDir) rmSync(workerDir, { recursive: true, force: true })
})

/** The host calls, the customer answers, each with its own media options; both secured with the same safety code. */
const call = async (atHost: CallOptions, atCustomer: CallOptions = atHost) => {
  const [h, c] = await Promise.all([
    host.evaluate(({ id, o }) => tesseraRelayDevice.call(id, o), { id: customerId, o: atHost }),
    customer.evaluate((o) => tesseraRelayDevice.answer(o), atCustomer)
  ])
  const started = (outcome: CallOutcome, side: string) => {
    if ("error" in outcome) throw new Error(`the ${side}'s call did not start: ${outcome.error}`)
    return outcome
  }
  const [atHostSide, atCustomerSide] = [started(h, "host"), started(c, "customer")]
  expect(atHostSide.safetyCode).toBe(atCustomerSide.safetyCode)
  return { startedAt: atHostSide.startedAt }
}

const hangUp = () => Promise.all([host, customer].map((p) => p.evaluate(() => tesseraRelayDevice.hangUp())))

const stats = (page: Page): Promise<CallMediaStats> => page.evaluate(() => tesseraRelayDevice.stats())
const decoded = (page: Page) => stats(page).then((s) => s.video.framesDecoded)
const connected = (page: Page) => page.evaluate((ms) => tesseraRelayDevice.awaitConnected(ms), CONNECT_MS)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const mediaState = (page: Page) => page.evaluate(() => tesseraRelayDevice.mediaState())

/**
 * Both sides ended on `reason`: each found it itself, or the peer found it first and said so (MediaFailed), and at
 * least one side found it itself.
 */
const bothEndedOn = async (reason: string, wait: (page: Page) => Promise<unknown>) => {
  const ends = await Promise.all([host, customer].map(wait))
  for (const end of ends) {
    expect([{ failure: reason }, { failure: "peer-failed", peerFailure: reason }]).toContainEqual(end)
  }
  expect(ends).toContainEqual({ failure: reason })
}
const ended = (page: Page) =>
  expect.poll(() => mediaState(page), { timeout: RELAY_LOST_MS, interval: 500 }).toMatchObject({ connection: "closed" })
    .then(() => mediaState(page))
    .then(({ failure, peerFailure }) => (peerFailure ? { failure, peerFailure } : { failure }))

/** Both sides decode video that came through SFrame, and keep decoding. */
const bothDecode = async () => {
  for (const page of [host, customer]) {
    await expect.poll(() => decoded(page), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(0)
  }
  for (const page of [host, customer]) {
    const before = await decoded(page)
    await expect.poll(() => decoded(page), { timeout: 15_000, interval: 250 }).toBeGreaterThan(before + 10)
    const s = await stats(page)
    expect(s.sframeSuite).toBe(0x0006)
    expect(s.sent.video.protected).toBeGreaterThan(0)
    expect(s.sent.audio.protected).toBeGreaterThan(0)
    expect(s.received.video.protected).toBeGreaterThan(0)
    expect(s.received.audio.protected).toBeGreaterThan(0)
    expect(s.received.video.dropped + s.received.audio.dropped).toBe(0)
    expect(s.signals.rejected).toBe(0)
  }
}

describe("calls through the relay, in Chromium, SFrame 0x0006", () => {
  it("forced relay: both sides decode each other's video through the relay; nothing went peer to peer", async () => {
    try {
      await call({ mode: "relay" })
      for (const page of [host, customer]) expect(await connected(page)).toEqual({ connected: "relay" })
      await bothDecode()
      for (const page of [host, customer]) {
        const s = await stats(page)
        expect(s).toMatchObject({ mode: "relay", policy: "relay", connectionState: "connected", negotiations: 0, relayJoins: 1 })
        expect(s.fellBackBecause).toBeUndefined()
      }
      const printed = server.stdout() + server.stderr()
      for (const text of CLEARTEXT) expect(printed).not.toContain(text)
    } finally {
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("forced relay with UDP blocked at the customer (as behind a firewall): its transports reach the relay over TCP and both decode", async () => {
    await customer.evaluate(() => tesseraRelayDevice.blockUdp(true))
    try {
      await call({ mode: "relay" })
      for (const page of [host, customer]) expect(await connected(page)).toEqual({ connected: "relay" })
      await bothDecode()
      // Both of the customer's transports (send and receive) are on the relay's TCP candidate; the host's on UDP.
      expect(await customer.evaluate(() => tesseraRelayDevice.selectedProtocols())).toEqual(["tcp", "tcp"])
      for (const page of [host, customer]) expect(await stats(page)).toMatchObject({ mode: "relay", relayJoins: 1, negotiations: 0 })
    } finally {
      await customer.evaluate(() => tesseraRelayDevice.blockUdp(false))
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("forced relay, the network changes under the customer: it restarts ICE with the relay by itself and both decode on", async () => {
    const iceRestarts = (page: Page) => stats(page).then((s) => s.relayIceRestarts)
    /** Each side's decoded frames grow by more than 10 from now on. */
    const bothDecodeOn = async () => {
      for (const page of [host, customer]) {
        const now = await decoded(page)
        await expect.poll(() => decoded(page), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(now + 10)
      }
    }
    try {
      await call({ mode: "relay" })
      for (const page of [host, customer]) expect(await connected(page)).toEqual({ connected: "relay" })
      await bothDecode()
      expect(await Promise.all([iceRestarts(host), iceRestarts(customer)])).toEqual([0, 0])

      // The browser comes back online: no user action, the customer's transports get fresh ICE credentials.
      const before = await Promise.all([decoded(host), decoded(customer)])
      await customer.evaluate(() => window.dispatchEvent(new Event("online")))
      await expect.poll(() => iceRestarts(customer), { timeout: CONNECT_MS, interval: 250 }).toBeGreaterThanOrEqual(1)
      for (const page of [host, customer]) {
        await expect.poll(() => stats(page).then((s) => s.connectionState), { timeout: CONNECT_MS, interval: 250 }).toBe("connected")
      }
      await bothDecodeOn()
      expect(await decoded(host)).toBeGreaterThan(before[0]!)
      expect(await decoded(customer)).toBeGreaterThan(before[1]!)

      // A burst of network events (an interface change fires several) is one more restart, not one per event.
      const settled = await iceRestarts(customer)
      await customer.evaluate(() => {
        for (let i = 0; i < 3; i++) window.dispatchEvent(new Event("online"))
      })
      await expect.poll(() => iceRestarts(customer), { timeout: CONNECT_MS, interval: 250 }).toBe(settled + 1)

      // The host restarts on request (as an app would after its own network check).
      await host.evaluate(() => tesseraRelayDevice.restartIce())
      await expect.poll(() => iceRestarts(host), { timeout: CONNECT_MS, interval: 250 }).toBe(1)
      for (const page of [host, customer]) {
        await expect.poll(() => stats(page).then((s) => s.connectionState), { timeout: CONNECT_MS, interval: 250 }).toBe("connected")
      }
      await bothDecodeOn()
      expect(await iceRestarts(customer)).toBe(settled + 1)
      for (const page of [host, customer]) {
        const s = await stats(page)
        // The same join all along: no relay restart, no second join, nothing peer to peer.
        expect(s).toMatchObject({ mode: "relay", relayJoins: 1, relayRestarts: 0, negotiations: 0 })
        expect(s.received.video.dropped + s.received.audio.dropped).toBe(0)
      }
      const printed = server.stdout() + server.stderr()
      for (const text of CLEARTEXT) expect(printed).not.toContain(text)
    } finally {
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("forced relay, the customer receives with the wrong key: it decodes no frame, while the host decodes", async () => {
    try {
      await call({ mode: "relay" }, { mode: "relay", wrongReceiveKey: true })
      await expect.poll(() => decoded(host), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(0)
      const hostBefore = await stats(host)
      await sleep(5_000)
      const sender = await stats(host)
      const receiver = await stats(customer)
      expect(sender.video.framesEncoded).toBeGreaterThan(hostBefore.video.framesEncoded)
      expect(sender.video.framesDecoded).toBeGreaterThan(hostBefore.video.framesDecoded)
      expect(receiver.mode).toBe("relay")
      expect(receiver.video.packetsReceived).toBeGreaterThan(0)
      expect(receiver.received.video.dropped).toBeGreaterThan(0)
      expect(receiver.received.audio.dropped).toBeGreaterThan(0)
      expect(receiver.received.video.protected).toBe(0)
      expect(receiver.received.audio.protected).toBe(0)
      expect(receiver.video.framesDecoded).toBe(0)
      expect(receiver.audio.totalAudioEnergy).toBe(0)
    } finally {
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("forced relay where the browser will not hand a relay sender's frames to SFrame: nothing is sent, the media end on both sides, the peer told why", async () => {
    await host.evaluate(() => tesseraRelayDevice.refuseEncodedSenders(true))
    try {
      await call({ mode: "relay" })
      expect(await connected(host)).toEqual({ failed: "frame-protection" })
      await expect.poll(() => mediaState(customer), { timeout: CONNECT_MS, interval: 250 })
        .toEqual({ mode: "relay", connection: "closed", failure: "peer-failed", peerFailure: "frame-protection" })
      await sleep(3_000)
      const [sender, receiver] = await Promise.all([stats(host), stats(customer)])
      expect(sender).toMatchObject({ mode: "relay", connectionState: "closed" })
      expect(sender.sent.video.protected + sender.sent.audio.protected).toBe(0)
      expect(sender.video.packetsSent + sender.audio.packetsSent).toBe(0)
      expect(receiver.video.packetsReceived + receiver.audio.packetsReceived).toBe(0)
      expect(receiver.video.framesDecoded).toBe(0)
    } finally {
      await host.evaluate(() => tesseraRelayDevice.refuseEncodedSenders(false))
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("auto on an open network stays peer to peer", async () => {
    try {
      await call({ mode: "auto" })
      for (const page of [host, customer]) expect(await connected(page)).toEqual({ connected: "p2p" })
      await bothDecode()
      for (const page of [host, customer]) {
        expect(await stats(page)).toMatchObject({ mode: "p2p", policy: "auto", relayJoins: 0, connectionState: "connected" })
      }
    } finally {
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("auto with peer to peer blocked: both sides fall back to the relay by themselves, within the bound, and decode", async () => {
    try {
      const { startedAt } = await call({ mode: "auto", blockPeerToPeer: true, p2pTimeoutMs: 3_000 })
      for (const page of [host, customer]) expect(await connected(page)).toEqual({ connected: "relay" })
      await bothDecode()
      const both = await Promise.all([stats(host), stats(customer)])
      for (const s of both) {
        expect(s).toMatchObject({ mode: "relay", policy: "auto", relayJoins: 1, connectionState: "connected" })
        expect(["timeout", "peer"]).toContain(s.fellBackBecause)
      }
      // At least one side gave up on peer to peer itself; the other may have followed it.
      expect(both.map((s) => s.fellBackBecause)).toContain("timeout")
      expect(Date.now() - startedAt).toBeGreaterThan(3_000)
    } finally {
      await hangUp()
    }
  }, CALL_TEST_MS)

  it("the relay's worker crashes mid-call: the room is re-created, both sides join it again and decode on", async () => {
    try {
      await call({ mode: "relay" })
      await bothDecode()
      killWorker()
      for (const page of [host, customer]) {
        await expect.poll(() => stats(page).then((s) => s.relayRestarts), { timeout: CONNECT_MS, interval: 250 }).toBe(1)
      }
      for (const page of [host, customer]) {
        await expect.poll(() => stats(page).then((s) => s.connectionState), { timeout: CONNECT_MS, interval: 250 }).toBe("connected")
        const before = await decoded(page)
        await expect.poll(() => decoded(page), { timeout: FIRST_FRAME_MS, interval: 250 }).toBeGreaterThan(before + 10)
        const s = await stats(page)
        expect(s).toMatchObject({ mode: "relay", relayJoins: 2, relayRestarts: 1 })
        expect(s.received.video.dropped + s.received.audio.dropped).toBe(0)
      }
      expect(ownWorkers()).toHaveLength(1)
    } finally {
      await hangUp()
    }
  }, CALL_TEST_MS)

  // Last: it leaves the server without a media worker.
  it("the relay's worker dies for good mid-call, then the relay is unavailable: both sides end with a clear error", async () => {
    // Mid-call: no room can be re-created, the transports fail, and both sides end with relay-lost.
    try {
      await call({ mode: "relay" })
      await bothDecode()
      writeFileSync(path.join(workerDir, "blocked"), "")
      killWorker()
      await bothEndedOn("relay-lost", ended)
    } finally {
      await hangUp()
    }
    expect(ownWorkers()).toHaveLength(0)

    // A new call: the relay cannot be joined, and both sides say so.
    try {
      await call({ mode: "relay" })
      await bothEndedOn("relay-unavailable", ended)
      for (const page of [host, customer]) {
        const s = await stats(page)
        expect(s).toMatchObject({ mode: "relay", connectionState: "closed", relayJoins: 0 })
        expect(s.sent.video.protected + s.sent.audio.protected).toBe(0)
      }
    } finally {
      await hangUp()
    }
    // Auto falls back after its bound and meets the same: a clear error, not a call that hangs without media.
    try {
      await call({ mode: "auto", blockPeerToPeer: true, p2pTimeoutMs: 2_000 })
      await bothEndedOn("relay-unavailable", ended)
    } finally {
      await hangUp()
    }
    expect(existsSync(path.join(workerDir, "blocked"))).toBe(true)
  }, CALL_TEST_MS + RELAY_LOST_MS)
})
