/**
 * `tessera audit verify` and `tessera audit replay`: the operator's view of the event log (src/eventstore/Audit.ts).
 * Output carries opaque stream ids, versions, event types and dates only, never a payload.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Console, Effect, Option, Stream } from "effect"
import { formatLifecycle, replay, verifyChains } from "../eventstore/Audit.js"
import { EXIT_FAILED, EXIT_OK, readWords, runSubcommand } from "./args.js"
import { progressOnStderr } from "./progress.js"
import { runCommand } from "./run.js"
import { withDatabase } from "./storage.js"

const AUDIT_USAGE = `usage: tessera audit verify
       tessera audit replay

verify  checks every stream's hash chain and stream head, then prints
          N streams, M events: every hash chain is intact
        and exits 0; after tampering it prints
          N streams, M events: K broken links
          first broken link: stream ID version V (hash-mismatch | prev-hash-mismatch | version-gap)
        and exits 1.
replay  prints each stream's lifecycle in stream id order, then "N streams, M events":
          stream ID (E events)
            v1  2025-01-31  HostEnrolled
verify and replay show their progress on stderr when the log is long. Neither needs the master key.`

const counted = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`

const verify = Effect.gen(function*() {
  const progress = progressOnStderr("audit verify", { printsWhileScanning: false })
  const report = yield* verifyChains({ onProgress: progress.onProgress }).pipe(Effect.ensuring(progress.finish))
  const counts = `${counted(report.streams, "stream")}, ${counted(report.events, "event")}`
  if (Option.isNone(report.firstBroken)) {
    yield* Console.log(`${counts}: every hash chain is intact`)
    return EXIT_OK
  }
  const link = report.firstBroken.value
  yield* Console.log(`${counts}: ${counted(report.brokenLinks, "broken link")}`)
  yield* Console.log(`first broken link: stream ${link.streamId} version ${link.version} (${link.reason})`)
  return EXIT_FAILED
})

const replayLifecycles = Effect.gen(function*() {
  const progress = progressOnStderr("audit replay", { printsWhileScanning: true })
  let streams = 0
  let events = 0
  yield* replay({ onProgress: progress.onProgress }).pipe(
    Stream.runForEach((lifecycle) => {
      streams++
      events += lifecycle.events.length
      return Console.log(formatLifecycle(lifecycle).join("\n"))
    }),
    Effect.ensuring(progress.finish)
  )
  yield* Console.log(`${counted(streams, "stream")}, ${counted(events, "event")}`)
  return EXIT_OK
})

const command = (run: Effect.Effect<number, never, SqlClient.SqlClient>) =>
(args: ReadonlyArray<string>): Promise<number> => {
  const words = readWords(AUDIT_USAGE, args, { positionals: [0, 0] })
  if (typeof words === "number") return Promise.resolve(words)
  return runCommand(withDatabase(run))
}

export const runAudit = (args: ReadonlyArray<string>): Promise<number> =>
  runSubcommand(AUDIT_USAGE, { verify: command(verify), replay: command(replayLifecycles) }, args)
