// A late joiner's wait in a conference, in real headless Chromium on loopback: from the host's attach of the
// customer's call to the customer's first decoded video frame from every other participant, SFrame 0x0006 under the
// conference's epoch keys, through the conference's relay room.
//
// One server process (embedded database, one mediasoup worker) and one Chromium with three pages, each in its own
// context: the host's device and two customers' apps (test/browser/conference-entry.ts, as the Chromium test uses).
// The host leads a conference with customer A in it, both sending all along; customer B, whose call with the host
// is secured once, is attached, decodes both, leaves, and is attached again. Each measured join includes what a
// user waits for: the attach and its new epoch, the key over the sealed call, the join of the relay room, capture,
// ICE and DTLS, and the first key frame of each sender through SFrame. The first join is a warm-up and not counted.
// Both clocks are this machine's.
//
//   npx tsx bench/conference.bench.ts     prints one JSON object, writes bench/results/conference.json
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Page } from "playwright-core"
import { baseEnv, enrollHost, startServer, stopAll } from "../src/demo/media-processes.js"
import type { ConferenceDevicePageApi, Outcome } from "../test/browser/conference-entry.js"
import { openBrowserPage } from "../test/support/browser.js"
import { publishFigures } from "./results.js"

declare const tesseraConferenceDevice: ConferenceDevicePageApi

const here = dirname(fileURLToPath(import.meta.url))
const settings = { warmupJoins: 1, measuredJoins: 7, decodeTimeoutMs: 30_000, pollMs: 10 }

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const done = <A extends object>(outcome: Outcome<A>, what: string): A => {
  if ("error" in outcome) throw new Error(`${what} failed: ${outcome.error}`)
  return outcome
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Until `check` holds, or fails after `ms`. */
const until = async (what: string, check: () => Promise<boolean>, ms = 30_000) => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(100)
  }
}

const slotsSeen = (page: Page) => page.evaluate(() => tesseraConferenceDevice.report()).then((r) => r.participants.map((p) => p.slot))

/** The host calls the customer, the customer answers, both secure the call. */
const securedCall = async (host: Page, customer: Page, customerId: string) => {
  const [atHost, atCustomer] = await Promise.all([
    host.evaluate((id) => tesseraConferenceDevice.callAndSecure(id), customerId),
    customer.evaluate(() => tesseraConferenceDevice.answerAndSecure())
  ])
  done(atHost, "the host's call")
  done(atCustomer, "the customer's call")
}

/** Attaches the customer and waits for its first decoded frames: ms to the first sender's, and to every sender's. */
const timedJoin = async (host: Page, customer: Page, customerId: string, others: number) => {
  const joining = customer.evaluate(() => tesseraConferenceDevice.joinWhenAttached())
  const { attachedAt } = done(await host.evaluate((id) => tesseraConferenceDevice.attach(id), customerId), "attaching")
  done(await joining, "joining")
  const decoded = await customer.evaluate(
    ({ n, ms, poll }) => tesseraConferenceDevice.awaitDecoding(n, ms, poll),
    { n: others, ms: settings.decodeTimeoutMs, poll: settings.pollMs }
  )
  if (decoded.all === undefined) throw new Error(`no decoded frame from every sender within ${settings.decodeTimeoutMs} ms`)
  return { first: decoded.first! - attachedAt, all: decoded.all - attachedAt }
}

const main = async () => {
  const workDir = await mkdtemp(join(tmpdir(), "tessera-conference-bench-"))
  const env = { ...baseEnv(), TESSERA_DATA_DIR: join(workDir, "data"), HOST: "127.0.0.1", PORT: "0", TESSERA_MEDIA_WORKERS: "1" }
  const browser = await openBrowserPage({ entry: join(here, "..", "test", "browser", "conference-entry.ts") })
  try {
    const code = await enrollHost(env, workDir)
    const server = await startServer(env)
    const page = async () => {
      const p = await (await browser.browser.newContext()).newPage()
      await p.goto(browser.origin + "/", { waitUntil: "load" })
      return p
    }
    const [host, anna, ben] = await Promise.all([page(), page(), page()])
    await host.evaluate(({ url, code }) => tesseraConferenceDevice.enrollHost(url, code), { url: server.url, code })
    const ids: Array<string> = []
    for (const [name, customer] of [["Anna", anna], ["Ben", ben]] as const) {
      const { customerId, activationCode } = await host.evaluate((n) => tesseraConferenceDevice.addCustomer(n), name)
      await customer.evaluate(({ url, code }) => tesseraConferenceDevice.activate(url, code), { url: server.url, code: activationCode })
      await host.evaluate((id) => tesseraConferenceDevice.awaitOnline(id), customerId)
      ids.push(customerId)
    }
    const [annaId, benId] = ids as [string, string]
    await securedCall(host, anna, annaId)
    done(await host.evaluate(() => tesseraConferenceDevice.lead()), "leading")
    await timedJoin(host, anna, annaId, 1)
    await securedCall(host, ben, benId)

    const samples = { first: [] as Array<number>, all: [] as Array<number> }
    for (let i = 0; i < settings.warmupJoins + settings.measuredJoins; i++) {
      const ms = await timedJoin(host, ben, benId, 2)
      if (i >= settings.warmupJoins) {
        samples.first.push(ms.first)
        samples.all.push(ms.all)
      }
      process.stderr.write(`[conference] join ${i + 1}: first sender ${ms.first} ms, every sender ${ms.all} ms\n`)
      await ben.evaluate(() => tesseraConferenceDevice.leave())
      // B's tracks gone from the host's view: the next join starts from a conference without B.
      await until("the host without B", async () => (await slotsSeen(host)).length === 1)
    }
    const figures = {
      conference_late_join_decode_ms_p50: percentile(samples.all, 50),
      conference_late_join_decode_ms_max: Math.max(...samples.all),
      conference_late_join_first_frame_ms_p50: percentile(samples.first, 50),
      conference_late_join_joins: settings.measuredJoins,
      conference_late_join_poll_ms: settings.pollMs
    }
    publishFigures("conference", figures)
  } finally {
    await browser.close()
    await stopAll()
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 })
  }
}

await main()
