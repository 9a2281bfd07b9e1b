/**
 * Media relay fan-out on ONE mediasoup worker, loopback only.
 *
 * One router (opus), one PlainTransport producer (comedia, 127.0.0.1) fed by a Node UDP socket with an opus-like
 * stream: 50 RTP packets/s of 160-byte payload (64 kbit/s of payload). N PlainTransport consumers each send to
 * local UDP receiving sockets (consumers are spread over a few sockets and told apart by their SSRC). N steps up;
 * at each step a measurement window of WINDOW_MS is tagged in the payload, and after a short drain the packets of
 * that window received per consumer are compared with the packets sent in it.
 *
 * relay_consumers_per_worker: the largest N whose aggregate packet loss is < 1% (stepping stops at the first
 *   step at or above 1%).
 * relay_worker_cpu_percent_at_<N>: the worker process's CPU time (utime+stime from /proc/<pid>/stat) over the
 *   window, as % of one core.
 * relay_cpu_us_per_forwarded_packet: worker CPU µs per packet received by a consumer socket, at the largest
 *   passing N. relay_cpu_percent_per_forwarded_stream: worker CPU % at that N divided by N.
 * relay_kernel_udp_rcvbuf_drops_at_<N>: the kernel's UDP RcvbufErrors delta over the window (host-wide).
 * Caveat: the receiving sockets live in this Node process, on the same machine; at high N the receiver, not the
 * worker, may be what drops packets (see relay_loss_percent_at_<N> and relay_bench_process_cpu_percent_at_<N>).
 *
 * Run: npx tsx bench/relay.bench.ts   (prints one JSON object, writes bench/results/relay.json)
 */
import * as Effect from "effect/Effect"
import type { types } from "mediasoup"
import { execFileSync } from "node:child_process"
import { createSocket, type Socket } from "node:dgram"
import { readFileSync } from "node:fs"
import { locateWorkerBinary } from "../src/media/WorkerBinary.js"
import { publishFigures } from "./results.js"

const STEPS = [50, 100, 200, 300, 400, 500, 700, 1000, 1500, 2000] as const
const PACKETS_PER_S = 50
const PAYLOAD_BYTES = 160
const PAYLOAD_TYPE = 100
const PRODUCER_SSRC = 0x1234_5678
const WARMUP_MS = 700
const WINDOW_MS = 3_000
const DRAIN_MS = 1_000
const RECEIVE_SOCKETS = 32
const CREATE_BATCH = 50
const WARMUP_TAG = 0xff

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const clockTicks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100
  } catch {
    return 100
  }
})()

/** utime + stime of a process, in microseconds. */
const processCpuUs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) / clockTicks) * 1e6
}

/** Kernel UDP counters (RcvbufErrors: datagrams dropped because a receiving socket's buffer was full). */
const udpRcvbufErrors = (): number => {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((line) => line.startsWith("Udp:"))
  const names = lines[0]?.split(/\s+/) ?? []
  const values = lines[1]?.split(/\s+/) ?? []
  return Number(values[names.indexOf("RcvbufErrors")] ?? 0)
}

const bind = (socket: Socket): Promise<number> =>
  new Promise((resolve, reject) => {
    socket.once("error", reject)
    socket.bind(0, "127.0.0.1", () => resolve(socket.address().port))
  })

const binary = await Effect.runPromise(locateWorkerBinary())
process.env["MEDIASOUP_WORKER_BIN"] = binary.path
const mediasoup = await import("mediasoup")

const worker = await mediasoup.createWorker({ logLevel: "warn", disableLiburing: true, rtcMinPort: 20000, rtcMaxPort: 29999 })
const workerPid = worker.pid
const router = await worker.createRouter({
  mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
})

const producerTransport = await router.createPlainTransport({
  listenInfo: { protocol: "udp", ip: "127.0.0.1" },
  rtcpMux: true,
  comedia: true
})
const producer = await producerTransport.produce({
  kind: "audio",
  rtpParameters: {
    codecs: [{ mimeType: "audio/opus", payloadType: PAYLOAD_TYPE, clockRate: 48000, channels: 2 }],
    encodings: [{ ssrc: PRODUCER_SSRC }]
  }
})

// Receiving side: counts per consumer SSRC of packets whose payload carries the current window's tag.
const receivers: Array<Socket> = []
const receiverPorts: Array<number> = []
const consumerBySsrc = new Map<number, number>()
let received = new Uint32Array(STEPS[STEPS.length - 1])
let windowTag = WARMUP_TAG
for (let i = 0; i < RECEIVE_SOCKETS; i++) {
  const socket = createSocket({ type: "udp4", recvBufferSize: 8 * 1024 * 1024 })
  socket.on("message", (msg) => {
    if (msg.length < 13 || (msg[0]! & 0xc0) !== 0x80) return
    const pt = msg[1]! & 0x7f
    if (pt >= 64 && pt <= 95) return // RTCP (SR/SDES from the consumers)
    const csrcCount = msg[0]! & 0x0f
    let offset = 12 + 4 * csrcCount
    if (msg[0]! & 0x10) offset += 4 + 4 * msg.readUInt16BE(offset + 2)
    if (msg[offset] !== windowTag) return
    const index = consumerBySsrc.get(msg.readUInt32BE(8))
    if (index !== undefined) received[index]!++
  })
  receiverPorts.push(await bind(socket))
  receivers.push(socket)
}

// Sending side: 50 packets/s, drift-corrected, to the comedia producer transport.
const sender = createSocket("udp4")
await bind(sender)
let seq = 0
let timestamp = 0
let sentTagged = 0
let sendTag = WARMUP_TAG
let sending = true
const sendOne = () => {
  const packet = Buffer.alloc(12 + PAYLOAD_BYTES)
  packet[0] = 0x80
  packet[1] = PAYLOAD_TYPE
  packet.writeUInt16BE(seq, 2)
  packet.writeUInt32BE(timestamp >>> 0, 4)
  packet.writeUInt32BE(PRODUCER_SSRC, 8)
  packet[12] = sendTag
  seq = (seq + 1) & 0xffff
  timestamp = (timestamp + 960) % 2 ** 32
  if (sendTag !== WARMUP_TAG) sentTagged++
  sender.send(packet, producerTransport.tuple.localPort, "127.0.0.1")
}
const started = performance.now()
let sentTotal = 0
const senderLoop = (async () => {
  while (sending) {
    const due = started + (sentTotal * 1000) / PACKETS_PER_S
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    if (!sending) break
    sendOne()
    sentTotal++
  }
})()

const consumerTransports: Array<types.PlainTransport> = []
const addConsumer = async (index: number) => {
  const transport = await router.createPlainTransport({
    listenInfo: { protocol: "udp", ip: "127.0.0.1" },
    rtcpMux: true,
    comedia: false
  })
  await transport.connect({ ip: "127.0.0.1", port: receiverPorts[index % RECEIVE_SOCKETS]! })
  const consumer = await transport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
  const ssrc = consumer.rtpParameters.encodings?.[0]?.ssrc
  if (ssrc === undefined) throw new Error("consumer without an SSRC")
  consumerBySsrc.set(ssrc, index)
  consumerTransports[index] = transport
}

const figures: Record<string, number | string> = {
  relay_stream: `opus-like ${PACKETS_PER_S} pkt/s x ${PAYLOAD_BYTES} B payload (${(PACKETS_PER_S * PAYLOAD_BYTES * 8) / 1000} kbit/s)`,
  relay_window_ms: WINDOW_MS
}
let best: { n: number; cpuPercent: number; cpuUsPerPacket: number } | undefined
try {
  for (const [stepIndex, n] of STEPS.entries()) {
    const tag = stepIndex
    for (let from = consumerTransports.length; from < n; from += CREATE_BATCH) {
      const batch = Array.from({ length: Math.min(CREATE_BATCH, n - from) }, (_, k) => from + k)
      await Promise.all(batch.map(addConsumer))
    }
    await sleep(WARMUP_MS)
    received = new Uint32Array(STEPS[STEPS.length - 1])
    windowTag = tag
    sentTagged = 0
    const rcvbufBefore = udpRcvbufErrors()
    const cpuBefore = processCpuUs(workerPid)
    const selfBefore = process.cpuUsage()
    const t0 = performance.now()
    sendTag = tag
    await sleep(WINDOW_MS)
    sendTag = WARMUP_TAG
    const elapsedUs = (performance.now() - t0) * 1000
    const cpuUs = processCpuUs(workerPid) - cpuBefore
    const self = process.cpuUsage(selfBefore)
    await sleep(DRAIN_MS)
    windowTag = WARMUP_TAG - 1 // count nothing until the next window
    figures[`relay_kernel_udp_rcvbuf_drops_at_${n}`] = udpRcvbufErrors() - rcvbufBefore
    let total = 0
    let worst = 1
    for (let i = 0; i < n; i++) {
      total += received[i]!
      worst = Math.min(worst, sentTagged === 0 ? 0 : received[i]! / sentTagged)
    }
    const expected = sentTagged * n
    const lossPercent = expected === 0 ? 100 : 100 * (1 - total / expected)
    const cpuPercent = (100 * cpuUs) / elapsedUs
    const cpuUsPerPacket = total === 0 ? 0 : cpuUs / total
    figures[`relay_loss_percent_at_${n}`] = Number(lossPercent.toFixed(3))
    figures[`relay_worst_consumer_loss_percent_at_${n}`] = Number((100 * (1 - worst)).toFixed(3))
    figures[`relay_worker_cpu_percent_at_${n}`] = Number(cpuPercent.toFixed(2))
    figures[`relay_bench_process_cpu_percent_at_${n}`] = Number(
      ((100 * (self.user + self.system)) / elapsedUs).toFixed(2)
    )
    process.stderr.write(
      `N=${n}: sent ${sentTagged}, received ${total}/${expected} (loss ${lossPercent.toFixed(3)}%), ` +
        `worker cpu ${cpuPercent.toFixed(2)}%, ${cpuUsPerPacket.toFixed(2)} us/pkt\n`
    )
    if (lossPercent >= 1) break
    best = { n, cpuPercent, cpuUsPerPacket }
  }
} finally {
  sending = false
  await senderLoop
  for (const transport of consumerTransports) transport?.close()
  producerTransport.close()
  router.close()
  await new Promise<void>((resolve) => {
    if (worker.subprocessClosed) return resolve()
    worker.on("subprocessclose", () => resolve())
    worker.close()
  })
  sender.close()
  for (const socket of receivers) socket.close()
}

figures["relay_consumers_per_worker"] = best?.n ?? 0
// The machine's 1-minute load average at the end: on a busy machine the step that first loses packets moves.
figures["relay_host_loadavg_1m"] = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0])
figures["relay_steps_bounded_at"] = STEPS[STEPS.length - 1]
if (best) {
  figures["relay_cpu_us_per_forwarded_packet"] = Number(best.cpuUsPerPacket.toFixed(3))
  figures["relay_cpu_percent_per_forwarded_stream"] = Number((best.cpuPercent / best.n).toFixed(4))
}
publishFigures("relay", figures)
