// Child processes of bench/sessions.bench.ts (forked, IPC only; never run on its own).
//
//   sessions   a lean client holding thousands of WebSocket connections to the real server. It speaks the @effect/rpc
//              wire format directly (RpcSerialization.msgPack frames of Request / Ack out, Exit / Chunk in), as
//              bench/rpc.bench.ts's load client does, so that a connection costs the client little more than its
//              `ws` socket. A session is: session.challenge → RSA-PSS signature of authenticationMessage(nonce,
//              fingerprint) with the device key → session.authenticate → live.events (acking its chunks) →
//              presence.set { ready: true }, the same steps as the SDK's signIn.
//   latency    the SDK itself (signIn from src/sdk/node.ts, stock RpcClient) timing sequential presence.set calls.
//
// Every phase is driven by the parent: { connect n } opens n more connections, { authenticate } signs in every
// connection that has not yet, { subscribe } subscribes and sets ready every authenticated one; each answers once.
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as Effect from "effect/Effect"
import { fromBase64Url, utf8Bytes } from "../src/crypto/bytes.js"
import { importIdentityKeyPair, signWithIdentity } from "../src/crypto/identity.js"
import { authenticationMessage } from "../src/domain/config.js"

export interface Credentials {
  readonly url: string
  /** The device's SignedConfig in its encoded (wire) form. */
  readonly config: { readonly body: { readonly deviceFingerprint: string } }
  /** base64url of the device key pair. */
  readonly pkcs8: string
  readonly spki: string
}

export type ClientCommand =
  | { readonly _tag: "init"; readonly credentials: Credentials }
  | { readonly _tag: "connect"; readonly count: number; readonly concurrency: number }
  | { readonly _tag: "authenticate"; readonly concurrency: number }
  | { readonly _tag: "subscribe"; readonly concurrency: number }
  | { readonly _tag: "exit" }

export type ClientReply =
  | { readonly _tag: "ready" }
  | {
    readonly _tag: "phaseDone"
    readonly phase: string
    readonly ok: number
    readonly failed: number
    readonly error?: string
    /** Summed wall time of each step over the phase's sessions, for the log. */
    readonly stepsMs: Record<string, number>
  }
  | { readonly _tag: "latency"; readonly samplesMs: ReadonlyArray<number> }
  | { readonly _tag: "failed"; readonly error: string }

const send = (message: ClientReply) => process.send!(message)
const nextCommand = () => new Promise<ClientCommand>((resolve) => process.once("message", resolve))

const makeWebSocket = Effect.runSync(
  Socket.WebSocketConstructor.pipe(Effect.provide(NodeSocket.layerWebSocketConstructor))
)
// Server frames are whole messages, so one parser serves every connection of this process.
const parser = RpcSerialization.msgPack.unsafeMake()

interface Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
}

/** One WebSocket speaking the RPC wire format: calls resolve with their success value, failures reject. */
class LeanConnection {
  #nextId = 0
  readonly #pending = new Map<string, Pending>()
  /** Stream requests: resolved at the first chunk. */
  readonly #streams = new Map<string, Pending>()
  authenticated = false
  subscribed = false

  private constructor(private readonly ws: globalThis.WebSocket) {
    ws.onmessage = (event) => {
      for (const message of parser.decode(new Uint8Array(event.data as ArrayBuffer)) as Array<any>) this.#receive(message)
    }
    ws.onclose = (event) => this.#failAll(new Error(`connection closed (${event.code})`))
  }

  static open(url: string): Promise<LeanConnection> {
    return new Promise((resolve, reject) => {
      const ws = makeWebSocket(url)
      ws.binaryType = "arraybuffer"
      ws.onerror = () => reject(new Error("WebSocket could not connect"))
      ws.onopen = () => {
        ws.onerror = null
        resolve(new LeanConnection(ws))
      }
    })
  }

  #receive(message: any): void {
    switch (message._tag) {
      case "Exit": {
        const id = String(message.requestId)
        const pending = this.#pending.get(id) ?? this.#streams.get(id)
        this.#pending.delete(id)
        this.#streams.delete(id)
        if (message.exit._tag === "Success") pending?.resolve(message.exit.value)
        else pending?.reject(new Error(`${message.exit._tag}: ${JSON.stringify(message.exit.cause).slice(0, 300)}`))
        return
      }
      case "Chunk": {
        const id = String(message.requestId)
        this.ws.send(parser.encode({ _tag: "Ack", requestId: id })!)
        const stream = this.#streams.get(id)
        if (stream !== undefined && (message.values as Array<any>).some((event) => event?._tag === "EventsStarted")) {
          this.#streams.delete(id)
          stream.resolve(undefined)
        }
        return
      }
      case "Defect":
        this.#failAll(new Error(`server defect: ${JSON.stringify(message.defect).slice(0, 300)}`))
        return
    }
  }

  #failAll(error: Error): void {
    for (const pending of [...this.#pending.values(), ...this.#streams.values()]) pending.reject(error)
    this.#pending.clear()
    this.#streams.clear()
  }

  #request(tag: string, payload: unknown, into: Map<string, Pending>): Promise<unknown> {
    const id = String(this.#nextId++)
    return new Promise((resolve, reject) => {
      into.set(id, { resolve, reject })
      this.ws.send(parser.encode({ _tag: "Request", id, tag, payload, headers: [] })!)
    })
  }

  call(tag: string, payload?: unknown): Promise<unknown> {
    return this.#request(tag, payload, this.#pending)
  }

  /** Starts a streaming RPC; resolves once its EventsStarted chunk arrived. The stream stays open. */
  subscribe(tag: string): Promise<unknown> {
    return this.#request(tag, undefined, this.#streams)
  }
}

/** Runs `task` over `items` with at most `concurrency` at a time; counts successes and keeps the first error. */
const pool = async <A>(items: ReadonlyArray<A>, concurrency: number, task: (item: A) => Promise<void>) => {
  let next = 0
  let ok = 0
  let failed = 0
  let error: string | undefined
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!
      try {
        await task(item)
        ok++
      } catch (cause) {
        failed++
        error ??= cause instanceof Error ? cause.message : String(cause)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return { ok, failed, ...(error === undefined ? {} : { error }) }
}

const runSessions = async (credentials: Credentials) => {
  const keys = await importIdentityKeyPair(fromBase64Url(credentials.pkcs8), fromBase64Url(credentials.spki))
  const fingerprint = credentials.config.body.deviceFingerprint
  const connections: Array<LeanConnection> = []
  send({ _tag: "ready" })
  for (let phase = 0; phase < 100; phase++) {
    const command = await nextCommand()
    switch (command._tag) {
      case "connect": {
        const slots = Array.from({ length: command.count }, (_, i) => i)
        const steps = { open: 0 }
        const result = await pool(slots, command.concurrency, async () => {
          const t0 = performance.now()
          connections.push(await LeanConnection.open(credentials.url))
          steps.open += performance.now() - t0
        })
        send({ _tag: "phaseDone", phase: "connect", ...result, stepsMs: steps })
        break
      }
      case "authenticate": {
        const todo = connections.filter((c) => !c.authenticated)
        const steps = { challenge: 0, sign: 0, authenticate: 0 }
        const result = await pool(todo, command.concurrency, async (connection) => {
          const t0 = performance.now()
          const { nonce } = await connection.call("session.challenge") as { nonce: string }
          const t1 = performance.now()
          const signature = await signWithIdentity(keys.privateKey, utf8Bytes(authenticationMessage(nonce, fingerprint)))
          const t2 = performance.now()
          await connection.call("session.authenticate", { config: credentials.config, signature })
          const t3 = performance.now()
          steps.challenge += t1 - t0
          steps.sign += t2 - t1
          steps.authenticate += t3 - t2
          connection.authenticated = true
        })
        send({ _tag: "phaseDone", phase: "authenticate", ...result, stepsMs: steps })
        break
      }
      case "subscribe": {
        const todo = connections.filter((c) => c.authenticated && !c.subscribed)
        const steps = { subscribe: 0, ready: 0 }
        const result = await pool(todo, command.concurrency, async (connection) => {
          const t0 = performance.now()
          await connection.subscribe("live.events")
          const t1 = performance.now()
          await connection.call("presence.set", { ready: true })
          steps.subscribe += t1 - t0
          steps.ready += performance.now() - t1
          connection.subscribed = true
        })
        send({ _tag: "phaseDone", phase: "subscribe", ...result, stepsMs: steps })
        break
      }
      case "exit":
        process.exit(0)
        break
      default:
        throw new Error(`unexpected command ${command._tag}`)
    }
  }
  process.exit(0)
}

const runLatency = async (credentials: Credentials, warmup: number, samples: number) => {
  const { decodeConfig, memoryKeyStore, NodeWebSocket, signIn } = await import("../src/sdk/node.js")
  const keys = await importIdentityKeyPair(fromBase64Url(credentials.pkcs8), fromBase64Url(credentials.spki))
  const samplesMs = await Effect.gen(function*() {
    const session = yield* signIn({ config: decodeConfig(credentials.config), keys }, memoryKeyStore(), { url: credentials.url })
    for (let i = 0; i < warmup; i++) yield* session.rpc.presence.set({ ready: true })
    const samplesMs: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const start = performance.now()
      yield* session.rpc.presence.set({ ready: true })
      samplesMs.push(performance.now() - start)
    }
    return samplesMs
  }).pipe(Effect.scoped, Effect.provide(NodeWebSocket), Effect.runPromise)
  send({ _tag: "latency", samplesMs })
  process.exit(0)
}

if (process.send === undefined) {
  process.stderr.write("bench/sessions-client.ts is forked by bench/sessions.bench.ts; run that instead\n")
  process.exit(2)
}
// The device key comes over IPC, not on the command line.
const [role, ...rest] = process.argv.slice(2)
const main = nextCommand().then((init) => {
  if (init._tag !== "init") throw new Error(`expected init, got ${init._tag}`)
  return role === "latency" ? runLatency(init.credentials, Number(rest[0]), Number(rest[1])) : runSessions(init.credentials)
})
main.catch((cause) => {
  send({ _tag: "failed", error: cause instanceof Error ? cause.stack ?? cause.message : String(cause) })
  process.exit(1)
})
