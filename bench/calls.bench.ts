// Call set-up time in real headless Chromium on loopback: from "call" (the host's page is asked to call) to the
// first decoded video frame on both sides, peer to peer and forced through the relay, SFrame 0x0006 on every frame.
//
// One server process (embedded database, one mediasoup worker) and one Chromium with two pages, the host's device
// and the customer's app, enrolled and activated once. Each measured call includes what a user waits for: the
// invite and accept, the call handshake over the server, capture, ICE and DTLS, and the first key frame through
// SFrame; the first call of each mode is a warm-up and not counted. Both clocks are this machine's.
//
//   npx tsx bench/calls.bench.ts          prints one JSON object, writes bench/results/calls.json
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { openDemoBrowser } from "../src/demo/media-browser.js"
import type { CallOptions, MediaDevice } from "../src/demo/media-device.js"
import { baseEnv, enrollHost, startServer, stopAll } from "../src/demo/media-processes.js"
import { publishFigures } from "./results.js"

declare const tesseraMediaDevice: MediaDevice

const settings = { warmupCalls: 1, measuredCalls: 7, firstFrameTimeoutMs: 30_000, pollMs: 10 }

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** One call from the host's "call" to both sides' first decoded frame, in ms; the call is hung up after. */
const timedCall = async (host: Page, customer: Page, customerId: string, options: CallOptions) => {
  const calledAt = Date.now()
  try {
    const [h, c] = await Promise.all([
      host.evaluate(({ id, o }) => tesseraMediaDevice.call(id, o), { id: customerId, o: options }),
      customer.evaluate((o) => tesseraMediaDevice.answer(o), options)
    ])
    if ("error" in h || "error" in c) throw new Error(`a call did not start: ${"error" in h ? h.error : ""} ${"error" in c ? c.error : ""}`)
    const first = await Promise.all([host, customer].map((page) =>
      page.evaluate(({ ms, poll }) => tesseraMediaDevice.firstDecodedFrame(ms, poll), { ms: settings.firstFrameTimeoutMs, poll: settings.pollMs })
    ))
    if (first.some((at) => at === undefined)) throw new Error(`no decoded frame within ${settings.firstFrameTimeoutMs} ms`)
    const stats = await Promise.all([host, customer].map((page) => page.evaluate(() => tesseraMediaDevice.stats())))
    if (stats.some((s) => s.mode !== (options.mode === "relay" ? "relay" : "p2p") || s.sframeSuite !== 0x0006)) {
      throw new Error("a call took another path than asked, or another SFrame suite")
    }
    return Math.max(...(first as Array<number>)) - calledAt
  } finally {
    await Promise.all([host, customer].map((page) => page.evaluate(() => tesseraMediaDevice.hangUp())))
  }
}

const main = async () => {
  const workDir = await mkdtemp(join(tmpdir(), "tessera-calls-bench-"))
  const env = { ...baseEnv(), TESSERA_DATA_DIR: join(workDir, "data"), HOST: "127.0.0.1", PORT: "0", TESSERA_MEDIA_WORKERS: "1" }
  const browser = await openDemoBrowser()
  try {
    const code = await enrollHost(env, workDir)
    const server = await startServer(env)
    const [host, customer] = await Promise.all([browser.newDevicePage(), browser.newDevicePage()])
    const { customerId, activationCode } = await host.evaluate(({ url, code }) => tesseraMediaDevice.enrollHost(url, code), { url: server.url, code })
    await customer.evaluate(({ url, code }) => tesseraMediaDevice.activate(url, code), { url: server.url, code: activationCode })
    await host.evaluate((id) => tesseraMediaDevice.awaitOnline(id), customerId)

    const samples: Record<"p2p" | "relay", Array<number>> = { p2p: [], relay: [] }
    for (let i = 0; i < settings.warmupCalls + settings.measuredCalls; i++) {
      // Alternating, so that both modes see the same machine load over the run.
      for (const mode of ["p2p", "relay"] as const) {
        const ms = await timedCall(host, customer, customerId, { mode })
        if (i >= settings.warmupCalls) samples[mode].push(ms)
        process.stderr.write(`[calls] ${mode} call ${i + 1}: ${ms} ms\n`)
      }
    }
    const figures = {
      call_setup_ms_p50_p2p: percentile(samples.p2p, 50),
      call_setup_ms_p50_relay: percentile(samples.relay, 50),
      call_setup_ms_max_p2p: Math.max(...samples.p2p),
      call_setup_ms_max_relay: Math.max(...samples.relay),
      call_setup_calls_per_mode: settings.measuredCalls,
      call_setup_poll_ms: settings.pollMs
    }
    publishFigures("calls", figures)
  } finally {
    await browser.close()
    await stopAll()
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 })
  }
}

await main()
