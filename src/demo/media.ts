/**
 * `npm run demo -- --media`: the call media for real. A fresh server (embedded database, one mediasoup worker) and
 * two pages of headless Chromium with a fake camera and microphone, one the host's device and one the customer's
 * app, both using the browser SDK: the operator enrolls the host with the CLI, the host's page enrolls and issues
 * an activation code, the customer's page activates; then three calls, each secured end to end over the server:
 *   - peer to peer, SFrame on every frame;
 *   - forced through the relay, SFrame on every frame (the relay forwards ciphertext only);
 *   - through the relay with the customer receiving under a wrong key.
 * Per call and side it prints the mode the media took, the SFrame suite and the frames decoded, and exits 0 only
 * when both sides decoded in both modes and the wrong-key receiver decoded none. Nothing printed names a code, key,
 * id or address. Every process started here (the CLI, the server, Chromium) is ended before it returns.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import type { CallMediaStats } from "../sdk/media/index.js"
import { type DemoBrowser, openDemoBrowser } from "./media-browser.js"
import type { CallOptions, CallOutcome, MediaDevice } from "./media-device.js"
import { baseEnv, enrollHost, exited, startServer, stop, stopAll } from "./media-processes.js"
import { check, makeStepRunner, redact, say, StepFailed } from "./runner.js"
import { callSecuredTitle, MEDIA_CALLS, MEDIA_STEPS, type MediaCall, resultTitle, type Side } from "./media-steps.js"

declare const tesseraMediaDevice: MediaDevice

/** Seconds per step, generous for a loaded two-core machine (tsx compiling, RSA-4096 keys, video encoding). */
const PROCESS_START_S = 180
const KEYGEN_S = 180
const CALL_S = 120
/** How long the media run before the figures are read; the wrong-key receiver gets this long to decode anything. */
const MEDIA_RUN_MS = 5_000
const FIRST_FRAME_MS = 30_000
/** The relay's ports in this demo, apart from the defaults a server beside it might use. */
const RTC_PORTS = { TESSERA_RTC_MIN_PORT: "45000", TESSERA_RTC_MAX_PORT: "45999" }

// Ctrl-C (or SIGTERM) fails the step under way at once; the clean-up still runs.
const { step, interrupt } = makeStepRunner()

// ---------------------------------------------------------------------------------------------------------------
// The story

interface Parties {
  readonly host: Page
  readonly customer: Page
  readonly customerId: string
}

const started = (outcome: CallOutcome, side: Side) => {
  if ("error" in outcome) throw new Error(`the ${side}'s call did not start (${outcome.error})`)
  return outcome
}

const statsOf = (page: Page): Promise<CallMediaStats> => page.evaluate(() => tesseraMediaDevice.stats())

/** One call: secured, media under its policy, figures after the media ran; one line per side. */
const runCall = async ({ host, customer, customerId }: Parties, call: MediaCall) => {
  const options = (side: Side): CallOptions => ({ mode: call.policy, ...(call.wrongKeyAt === side ? { wrongReceiveKey: true } : {}) })
  try {
    await step(callSecuredTitle(call), CALL_S, async () => {
      const [h, c] = await Promise.all([
        host.evaluate(({ id, o }) => tesseraMediaDevice.call(id, o), { id: customerId, o: options("host") }),
        customer.evaluate((o) => tesseraMediaDevice.answer(o), options("customer"))
      ])
      check(started(h, "host").safetyCode === started(c, "customer").safetyCode, "the two sides see different safety codes")
      const connected = await Promise.all([host, customer].map((page) => page.evaluate((ms) => tesseraMediaDevice.awaitConnected(ms), CALL_S * 1000)))
      for (const [i, outcome] of connected.entries()) {
        if ("failed" in outcome) throw new Error(`the ${i === 0 ? "host" : "customer"}'s media failed (${outcome.failed})`)
      }
      const receivers = [host, customer].filter((_, i) => call.wrongKeyAt !== (i === 0 ? "host" : "customer"))
      const first = await Promise.all(receivers.map((page) => page.evaluate((ms) => tesseraMediaDevice.firstDecodedFrame(ms), FIRST_FRAME_MS)))
      check(first.every((at) => at !== undefined), `no frame decoded within ${FIRST_FRAME_MS / 1000} s`)
      await new Promise((resolve) => setTimeout(resolve, MEDIA_RUN_MS))
    }, () => "same safety code on both sides, media connected")
    const figures = await Promise.all([statsOf(host), statsOf(customer)])
    let failed = false
    for (const [i, side] of (["host", "customer"] as const).entries()) {
      const s = figures[i]!
      const title = resultTitle(call, side, { mode: s.mode, suite: s.sframeSuite, framesDecoded: s.video.framesDecoded })
      const wrongKey = call.wrongKeyAt === side
      const why = s.mode !== call.mode
        ? `the media took the ${s.mode} path`
        : s.sframeSuite !== 0x0006
        ? "not SFrame suite 0x0006"
        : wrongKey && (s.video.framesDecoded > 0 || s.received.video.protected + s.received.audio.protected > 0)
        ? "a receiver with the wrong key decoded frames"
        : wrongKey && s.video.packetsReceived === 0
        ? "the wrong-key receiver got no packets, so it proves nothing"
        : !wrongKey && s.video.framesDecoded === 0
        ? "no frame decoded"
        : undefined
      const detail = wrongKey
        ? `${s.received.video.dropped + s.received.audio.dropped} frames received and dropped`
        : `${s.received.video.protected + s.received.audio.protected} frames decrypted, ${
          s.received.video.dropped + s.received.audio.dropped
        } dropped`
      say(why === undefined ? `✓ ${title} — ${detail}` : `✗ ${title}: ${why}`)
      failed ||= why !== undefined
    }
    if (failed) throw new StepFailed(`${call.name} call`)
  } finally {
    await Promise.all([host, customer].map((page) => page.evaluate(() => tesseraMediaDevice.hangUp()).catch(() => undefined)))
  }
}

const story = async (workDir: string, cleanups: Array<() => Promise<void>>) => {
  const env = {
    ...baseEnv(),
    TESSERA_DATA_DIR: join(workDir, "data"),
    HOST: "127.0.0.1",
    PORT: "0",
    TESSERA_MEDIA_WORKERS: "1",
    ...RTC_PORTS
  }
  // Chromium starts and bundles while the operator and the server work.
  const browser: Promise<DemoBrowser> = openDemoBrowser()
  browser.then((b) => cleanups.push(b.close), () => undefined)

  const enrollmentCode = await step(MEDIA_STEPS.operatorEnrollsHost, PROCESS_START_S, () => enrollHost(env, workDir))
  const server = await step(MEDIA_STEPS.serverStarted, PROCESS_START_S, () => startServer(env))
  cleanups.push(() => stop(server.child))
  const [host, customer] = await step(MEDIA_STEPS.browserStarted, PROCESS_START_S, async () => {
    const b = await browser
    return Promise.all([b.newDevicePage(), b.newDevicePage()])
  })
  const { customerId, activationCode } = await step(MEDIA_STEPS.hostEnrollsDevice, KEYGEN_S, () =>
    host.evaluate(({ url, code }) => tesseraMediaDevice.enrollHost(url, code), { url: server.url, code: enrollmentCode }))
  await step(MEDIA_STEPS.customerActivates, KEYGEN_S, () =>
    customer.evaluate(({ url, code }) => tesseraMediaDevice.activate(url, code), { url: server.url, code: activationCode }))
  await step(MEDIA_STEPS.presence, CALL_S, () => host.evaluate((id) => tesseraMediaDevice.awaitOnline(id), customerId))

  for (const call of MEDIA_CALLS) await runCall({ host, customer, customerId }, call)

  await step(MEDIA_STEPS.serverStopped, PROCESS_START_S, async () => {
    server.child.removeAllListeners("exit")
    await Promise.all([host.context().close(), customer.context().close()])
    server.child.kill("SIGTERM")
    const { code, signal } = await exited(server.child)
    check(code === 0, `the server ended with ${signal ?? `exit code ${code}`}: ${server.stderr()}`)
  })
}

/** Runs the media demo; resolves with the exit code. */
export const runMediaDemo = async (): Promise<number> => {
  const startedAt = Date.now()
  const workDir = await mkdtemp(join(tmpdir(), "tessera-media-demo-"))
  const cleanups: Array<() => Promise<void>> = []
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    signalled = true
    interrupt(new Error(`interrupted (${signal})`))
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  say("tessera media demo: a fresh server with its media relay; host and customer as two pages of headless Chromium")
  let exitCode = 0
  try {
    await story(workDir, cleanups)
    say(`media demo passed: both sides decoded peer to peer and through the relay, the wrong key decoded nothing (${
      ((Date.now() - startedAt) / 1000).toFixed(1)
    } s)`)
  } catch (error) {
    exitCode = 1
    say(error instanceof StepFailed
      ? `media demo failed: ${error.message}`
      : `media demo failed: ${redact(error instanceof Error ? error.message : String(error))}`)
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
    await stopAll()
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 })
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
  return signalled ? 130 : exitCode
}
