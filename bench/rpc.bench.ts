// RPC round trips per second through the uWS protocol versus @effect/platform-node's own WebSocket server, and the
// latency one sequential stock client sees on uWS.
//
// Both servers run in this process with the same RpcGroup, handlers, RpcServer options and msgpack serialization.
// Load comes from child processes (so client work does not eat the server's CPU), all running the same lean
// client: WebSocket connections that each keep a fixed number of requests in flight, speaking the @effect/rpc wire
// format through RpcSerialization.msgPack. The latency client is the stock RpcClient (socket protocol).
//
//   npx tsx bench/rpc.bench.ts          prints one JSON object, writes bench/results/rpc.json
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Socket from "@effect/platform/Socket"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { type ChildProcess, fork } from "node:child_process"
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import * as UwsServer from "../src/rpc/UwsServer.js"
import { publishFigures } from "./results.js"

const Add = Rpc.make("Add", { payload: { a: Schema.Number, b: Schema.Number }, success: Schema.Number })
class BenchGroup extends RpcGroup.make(Add) {}
const HandlersLive = BenchGroup.toLayer({ Add: ({ a, b }) => Effect.succeed(a + b) })

/** The RpcServer both transports run: with its default options, or with tracing (a span per request) off. */
const rpcLive = (tracing: boolean) =>
  RpcServer.layer(BenchGroup, { disableTracing: !tracing }).pipe(Layer.provide(HandlersLive))

const settings = {
  loadProcesses: 2,
  connectionsPerProcess: 4,
  inFlightPerConnection: 8,
  warmupPerConnection: 1_000,
  requestsPerProcess: 25_000,
  rounds: 2,
  latencyWarmup: 500,
  latencySamples: 3_000
}

// ---------------------------------------------------------------------------------------------------------------
// Child: lean load client

interface LoadArgs {
  readonly url: string
  readonly connections: number
  readonly inFlight: number
  readonly warmup: number
  readonly requests: number
}

type ParentMessage =
  | { readonly _tag: "connect"; readonly args: LoadArgs }
  | { readonly _tag: "go" }
  | { readonly _tag: "exit" }
type ChildMessage =
  | { readonly _tag: "ready" }
  | { readonly _tag: "done"; readonly completed: number; readonly failed: number }
  | { readonly _tag: "latency"; readonly samplesMs: ReadonlyArray<number> }

const send = (message: ChildMessage) => process.send!(message)

const makeWebSocket = Effect.runSync(
  Socket.WebSocketConstructor.pipe(Effect.provide(NodeSocket.layerWebSocketConstructor))
)

/**
 * One connection that keeps `inFlight` requests outstanding until `total` have been answered. `start` may be
 * called again for a further phase.
 */
const loadConnection = (url: string, inFlight: number) =>
  new Promise<LoadConnection>((resolve, reject) => {
    const ws = makeWebSocket(url)
    ws.binaryType = "arraybuffer"
    const parser = RpcSerialization.msgPack.unsafeMake()
    let nextId = 0
    let sent = 0
    let completed = 0
    let failed = 0
    let total = 0
    let finish: (() => void) | undefined
    const request = () => {
      sent++
      const id = nextId++
      ws.send(parser.encode({ _tag: "Request", id: String(id), tag: "Add", payload: { a: id, b: 1 }, headers: [] })!)
    }
    ws.onmessage = (event) => {
      for (const response of parser.decode(new Uint8Array(event.data as ArrayBuffer)) as Array<any>) {
        if (response._tag !== "Exit") continue
        if (response.exit._tag === "Success") completed++
        else failed++
        if (sent < total) request()
        else if (completed + failed === total) finish?.()
      }
    }
    ws.onerror = () => reject(new Error("load connection failed"))
    ws.onopen = () =>
      resolve({
        run: (count) =>
          new Promise((done) => {
            sent = 0
            completed = 0
            failed = 0
            total = count
            finish = () => done({ completed, failed })
            for (let i = 0; i < Math.min(inFlight, count); i++) request()
          }),
        close: () => ws.close()
      })
  })

interface LoadConnection {
  /** Keeps `inFlight` requests outstanding until `total` have been answered. */
  readonly run: (total: number) => Promise<{ completed: number; failed: number }>
  readonly close: () => void
}

const nextParentMessage = () => new Promise<ParentMessage>((resolve) => process.once("message", resolve))

/** Serves `connect` → ready, `go` → done, until `exit`. */
const runLoadClient = async () => {
  for (;;) {
    const command = await nextParentMessage()
    if (command._tag !== "connect") break
    const { args } = command
    const connections = await Promise.all(
      Array.from({ length: args.connections }, () => loadConnection(args.url, args.inFlight))
    )
    await Promise.all(connections.map((connection) => connection.run(args.warmup)))
    send({ _tag: "ready" })
    await nextParentMessage()
    const perConnection = Math.ceil(args.requests / args.connections)
    const results = await Promise.all(connections.map((connection) => connection.run(perConnection)))
    for (const connection of connections) connection.close()
    send({
      _tag: "done",
      completed: results.reduce((sum, r) => sum + r.completed, 0),
      failed: results.reduce((sum, r) => sum + r.failed, 0)
    })
  }
  process.exit(0)
}

// Child: stock RpcClient, one request at a time.
const runLatencyClient = (url: string, warmup: number, samples: number) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      RpcClient.layerProtocolSocket().pipe(
        Layer.provide(Socket.layerWebSocket(url)),
        Layer.provide(NodeSocket.layerWebSocketConstructor),
        Layer.provide(RpcSerialization.layerMsgPack)
      )
    )
    const client = yield* RpcClient.make(BenchGroup).pipe(Effect.provide(context))
    for (let i = 0; i < warmup; i++) yield* client.Add({ a: i, b: 1 })
    const samplesMs: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const start = performance.now()
      yield* client.Add({ a: i, b: 1 })
      samplesMs.push(performance.now() - start)
    }
    send({ _tag: "latency", samplesMs })
  }).pipe(Effect.scoped, Effect.runPromise).then(() => process.exit(0))

// ---------------------------------------------------------------------------------------------------------------
// Parent

const self = fileURLToPath(import.meta.url)

const spawn = (args: ReadonlyArray<string>): ChildProcess => fork(self, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] })

const nextMessage = (child: ChildProcess) =>
  new Promise<ChildMessage>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`bench client exited with ${code}`))
    child.once("exit", onExit)
    child.once("message", (message) => {
      child.off("exit", onExit)
      resolve(message as ChildMessage)
    })
  })

interface Throughput {
  readonly roundTripsPerSecond: number
  /** CPU time of this (the server) process per round trip; steadier than wall time on a shared machine. */
  readonly serverCpuMicros: number
}

/** Round trips per second of all load processes against one server. */
const measureThroughput = async (loaders: ReadonlyArray<ChildProcess>, url: string): Promise<Throughput> => {
  const args: LoadArgs = {
    url,
    connections: settings.connectionsPerProcess,
    inFlight: settings.inFlightPerConnection,
    warmup: settings.warmupPerConnection,
    requests: settings.requestsPerProcess
  }
  const ready = loaders.map(nextMessage)
  for (const child of loaders) child.send({ _tag: "connect", args } satisfies ParentMessage)
  await Promise.all(ready)
  const results = loaders.map(nextMessage)
  const cpu = process.cpuUsage()
  const start = performance.now()
  for (const child of loaders) child.send({ _tag: "go" } satisfies ParentMessage)
  const done = await Promise.all(results)
  const seconds = (performance.now() - start) / 1000
  const { system, user } = process.cpuUsage(cpu)
  let completed = 0
  for (const message of done) {
    if (message._tag !== "done" || message.failed > 0) throw new Error("bench requests failed")
    completed += message.completed
  }
  return { roundTripsPerSecond: completed / seconds, serverCpuMicros: (user + system) / completed }
}

const best = (a: Throughput | undefined, b: Throughput): Throughput =>
  a === undefined ? b : {
    roundTripsPerSecond: Math.max(a.roundTripsPerSecond, b.roundTripsPerSecond),
    serverCpuMicros: Math.min(a.serverCpuMicros, b.serverCpuMicros)
  }

const measureLatency = async (url: string) => {
  const child = spawn(["latency", url, String(settings.latencyWarmup), String(settings.latencySamples)])
  const message = await nextMessage(child)
  if (message._tag !== "latency") throw new Error("unexpected message from latency client")
  const sorted = [...message.samplesMs].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { p50: at(0.5), p99: at(0.99) }
}

const startUws = (tracing: boolean) => Effect.gen(function*() {
  const context = yield* Layer.build(
    rpcLive(tracing).pipe(
      Layer.provideMerge(UwsServer.layerWithProtocol({ host: "127.0.0.1", port: 0, admissionDeadlineSeconds: 0, maxPendingConnections: 1_000_000 })),
      Layer.provide(RpcSerialization.layerMsgPack)
    )
  )
  return `ws://127.0.0.1:${Context.get(context, UwsServer.UwsServer).port}/rpc`
})

const startNodeWs = (tracing: boolean) => Effect.gen(function*() {
  const context = yield* Layer.build(
    HttpRouter.Default.serve().pipe(
      Layer.provide(rpcLive(tracing)),
      Layer.provide(RpcServer.layerProtocolWebsocket({ path: "/rpc" })),
      Layer.provide(RpcSerialization.layerMsgPack),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return `ws://127.0.0.1:${address.port}/rpc`
})

const round = (value: number, digits: number) => Number(value.toFixed(digits))

const main = Effect.gen(function*() {
  const loaders = Array.from({ length: settings.loadProcesses }, () => spawn(["load"]))
  const figures: Record<string, number> = {}
  for (const tracing of [true, false]) {
    const scope = yield* Scope.make()
    const uwsUrl = yield* Scope.extend(startUws(tracing), scope)
    const nodeWsUrl = yield* Scope.extend(startNodeWs(tracing), scope)
    // Alternate the two servers and keep each one's best run, so a burst of load from elsewhere on the machine
    // penalises neither side systematically.
    let uws: Throughput | undefined
    let nodeWs: Throughput | undefined
    for (let round = 0; round < settings.rounds; round++) {
      uws = best(uws, yield* Effect.promise(() => measureThroughput(loaders, uwsUrl)))
      nodeWs = best(nodeWs, yield* Effect.promise(() => measureThroughput(loaders, nodeWsUrl)))
    }
    const suffix = tracing ? "" : "_untraced"
    figures[`rpc_roundtrips_per_s_uws${suffix}`] = Math.round(uws!.roundTripsPerSecond)
    figures[`rpc_roundtrips_per_s_node_ws${suffix}`] = Math.round(nodeWs!.roundTripsPerSecond)
    figures[`rpc_uws_over_ws_ratio${suffix}`] = round(uws!.roundTripsPerSecond / nodeWs!.roundTripsPerSecond, 2)
    figures[`rpc_server_cpu_us_per_roundtrip_uws${suffix}`] = round(uws!.serverCpuMicros, 1)
    figures[`rpc_server_cpu_us_per_roundtrip_node_ws${suffix}`] = round(nodeWs!.serverCpuMicros, 1)
    figures[`rpc_uws_over_ws_cpu_ratio${suffix}`] = round(nodeWs!.serverCpuMicros / uws!.serverCpuMicros, 2)
    if (tracing) {
      const latency = yield* Effect.promise(() => measureLatency(uwsUrl))
      figures.rpc_latency_ms_p50 = round(latency.p50, 3)
      figures.rpc_latency_ms_p99 = round(latency.p99, 3)
    }
    yield* Scope.close(scope, Exit.void)
  }
  for (const child of loaders) child.send({ _tag: "exit" } satisfies ParentMessage)
  figures.rpc_bench_in_flight = settings.loadProcesses * settings.connectionsPerProcess * settings.inFlightPerConnection

  publishFigures("rpc", figures)
})

const [role, ...rest] = process.argv.slice(2)
if (role === "load") {
  runLoadClient()
} else if (role === "latency") {
  runLatencyClient(rest[0]!, Number(rest[1]), Number(rest[2]))
} else {
  Effect.runPromise(main).then(() => process.exit(0))
}
