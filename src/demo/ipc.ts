/**
 * The demo's wire between the coordinator (main.ts) and its client processes (host.ts, customer.ts): Node's IPC
 * channel of `child_process.fork`, one request at a time per command, answered with its result or a one-line error.
 *
 * A client process serves a map of named commands; the coordinator calls them by name with typed arguments. Ids and
 * codes do cross this channel (the coordinator hands the activation code from the host to the customer as the
 * practice would hand it over), but nothing here prints them.
 */
import { Cause, Effect, Exit } from "effect"
import type { ChildProcess } from "node:child_process"

/** A client process's commands: each takes one JSON-serialisable argument and resolves with a JSON-serialisable result. */
export type Commands = Record<string, (args: any) => Promise<unknown>>

interface Request {
  readonly id: number
  readonly command: string
  readonly args: unknown
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }

/** What a client process sends once its modules are loaded and it takes commands. */
export const READY = "ready"

/** One line saying why: an Effect failure's tag and message, an Error's message, or the thing itself. */
export const describeError = (error: unknown): string => {
  if (Cause.isCause(error)) return describeError(Cause.squash(error))
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const message = "message" in error && typeof error.message === "string" ? error.message : undefined
    if (tag !== undefined && message !== undefined && message !== "" && !message.includes(tag)) return `${tag}: ${message}`
    if (message !== undefined && message !== "") return message
    if (tag !== undefined) return tag
  }
  return String(error)
}

/** Runs an effect to a promise that rejects with an Error carrying `describeError` of the failure. */
export const runToPromise = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromiseExit(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    throw new Error(describeError(Cause.squash(exit.cause)))
  })

/**
 * In a client process: answers the coordinator's requests with `commands`, then says READY. The process ends when the
 * coordinator goes away (channel closed), so that no client outlives a coordinator that crashed.
 */
export const serveCommands = (commands: Commands, onExit: () => Promise<void>): void => {
  const send = process.send?.bind(process)
  if (send === undefined) {
    process.stderr.write("this is a demo client process: run it through `npm run demo`\n")
    process.exit(2)
  }
  let exiting = false
  const exit = (code: number) => {
    if (exiting) return
    exiting = true
    const timer = setTimeout(() => process.exit(code), 3_000)
    timer.unref()
    onExit().finally(() => process.exit(code))
  }
  process.on("disconnect", () => exit(1))
  process.on("message", (message: Request) => {
    if (message.command === "exit") {
      exit(0)
      return
    }
    const command = Object.hasOwn(commands, message.command) ? commands[message.command] : undefined
    const answer = command === undefined
      ? Promise.reject(new Error(`unknown command ${message.command}`))
      : Promise.resolve().then(() => command(message.args))
    answer.then(
      (result) => send({ id: message.id, ok: true, result } satisfies Reply),
      (error: unknown) => send({ id: message.id, ok: false, error: describeError(error) } satisfies Reply)
    )
  })
  send(READY)
}

/** The coordinator's handle on one client process. */
export interface Client<C extends Commands> {
  readonly call: <K extends keyof C & string>(command: K, args: Parameters<C[K]>[0]) => Promise<Awaited<ReturnType<C[K]>>>
}

/** Wraps a forked client process: requests go out with fresh ids; replies settle them; exit fails what is pending. */
export const clientOf = <C extends Commands>(child: ChildProcess, name: string): Client<C> => {
  let next = 0
  const pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>()
  child.on("message", (message: Reply | typeof READY) => {
    if (message === READY) return
    const waiting = pending.get(message.id)
    if (waiting === undefined) return
    pending.delete(message.id)
    if (message.ok) waiting.resolve(message.result as never)
    else waiting.reject(new Error(message.error))
  })
  child.on("exit", (code, signal) => {
    for (const waiting of pending.values()) {
      waiting.reject(new Error(`the ${name} process ended (${signal ?? `exit code ${code}`})`))
    }
    pending.clear()
  })
  return {
    call: (command, args) =>
      new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null || !child.connected) {
          reject(new Error(`the ${name} process is not running`))
          return
        }
        const id = next++
        pending.set(id, { resolve, reject })
        child.send({ id, command, args } satisfies Request, (error) => {
          if (error === null) return
          pending.delete(id)
          reject(error)
        })
      })
  }
}
