/**
 * `tessera host enroll` and `tessera host code HOST_ID`: a host account's one-time enrollment code, printed for
 * the operator to hand over. Only the code's keyed hash is stored, so this is the one time it can be seen.
 */
import { Console, Effect, Either, Schema } from "effect"
import { Enrollment, type IssuedCode } from "../actors/Enrollment.js"
import { MAX_CODE_VALIDITY_SECONDS } from "../domain/activationCode.js"
import { HostId } from "../domain/ids.js"
import { badUsage, EXIT_OK, readWords, runSubcommand } from "./args.js"
import { CliFailure, runCommand } from "./run.js"
import { withAccounts } from "./storage.js"

const HOST_USAGE = `usage: tessera host enroll [--valid-for DURATION]
       tessera host code HOST_ID [--valid-for DURATION]

enroll  creates a host account (a practice) and prints its id, its one-time enrollment code and when the code
        expires. The host's first device redeems the code.
code    issues a fresh enrollment code for an existing host account (e.g. for another device, or when the last
        code expired); the host's previous code stops working.

--valid-for DURATION  how long the code works: seconds, or a number with s, m, h or d (e.g. 3600, 90m, 3d);
                      at most 7 days, the default.

Output, one field per line:
  host id:  h_...
  code:     XXXX-XXXX-XXXX
  expires:  2025-01-31T12:00:00Z
Needs the master key (TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE) when DATABASE_URL is set.`

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 }

/** "3600", "90m", "3d" as seconds; undefined when the text is no such duration or is out of range. */
export const parseValidFor = (text: string): number | undefined => {
  const match = /^(\d{1,7})([smhd]?)$/.exec(text.trim())
  if (match === null) return undefined
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] || "s"]!
  return seconds >= 1 && seconds <= MAX_CODE_VALIDITY_SECONDS ? seconds : undefined
}

const printIssued = (hostId: string, issued: IssuedCode) =>
  Console.log(
    [
      `host id:  ${hostId}`,
      `code:     ${issued.code}`,
      `expires:  ${new Date(issued.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z")}`
    ].join("\n")
  ).pipe(Effect.as(EXIT_OK))

const failed = (error: { readonly _tag: "InvalidRequest"; readonly reason: string } | { readonly _tag: "AccountBusy" }) =>
  new CliFailure({
    message: error._tag === "AccountBusy" ? "the host account is busy, try again" : error.reason
  })

/** The words after `host enroll`/`host code`: the validity, and the host id for `code`. */
const readCodeRequest = (args: ReadonlyArray<string>, positionals: 0 | 1) => {
  const words = readWords(HOST_USAGE, args, { flags: ["valid-for"], positionals: [positionals, positionals] })
  if (typeof words === "number") return words
  const text = words.flags["valid-for"]
  const validFor = text === undefined ? MAX_CODE_VALIDITY_SECONDS : parseValidFor(text)
  if (validFor === undefined) return badUsage(HOST_USAGE, "--valid-for: expected seconds or e.g. 90m, 12h, 3d, at most 7d")
  return { validFor, positionals: words.positionals }
}

const enroll = (args: ReadonlyArray<string>): Promise<number> => {
  const request = readCodeRequest(args, 0)
  if (typeof request === "number") return Promise.resolve(request)
  return runCommand(withAccounts(Effect.gen(function*() {
    const enrollment = yield* Enrollment
    const { hostId, ...issued } = yield* Effect.mapError(enrollment.enrollHost(request.validFor), failed)
    return yield* printIssued(hostId, issued)
  })))
}

const code = (args: ReadonlyArray<string>): Promise<number> => {
  const request = readCodeRequest(args, 1)
  if (typeof request === "number") return Promise.resolve(request)
  const hostId = Schema.decodeUnknownEither(HostId)(request.positionals[0])
  if (Either.isLeft(hostId)) return Promise.resolve(badUsage(HOST_USAGE, "HOST_ID: expected h_ and 22 letters, digits, - or _"))
  return runCommand(withAccounts(Effect.gen(function*() {
    const enrollment = yield* Enrollment
    const issued = yield* Effect.mapError(enrollment.issueEnrollmentCode(hostId.right, request.validFor), failed)
    return yield* printIssued(hostId.right, issued)
  })))
}

export const runHost = (args: ReadonlyArray<string>): Promise<number> => runSubcommand(HOST_USAGE, { enroll, code }, args)
