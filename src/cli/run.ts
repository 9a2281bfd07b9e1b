/**
 * Runs one CLI command as an Effect: its success value is the exit code; an expected failure (CliFailure) is one
 * line on stderr and exit 1; Ctrl-C or SIGTERM interrupts it, so that the database is closed properly.
 */
import { Cause, Data, Effect, Exit, Fiber, Option } from "effect"
import { EXIT_FAILED } from "./args.js"

/** A failure the operator can act on, said in one line (no stack trace). */
export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly message: string }> {}

const EXIT_INTERRUPTED = 130

export const runCommand = (command: Effect.Effect<number, CliFailure>): Promise<number> =>
  new Promise((resolve) => {
    const fiber = Effect.runFork(command)
    const interrupt = () => {
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.once("SIGINT", interrupt)
    process.once("SIGTERM", interrupt)
    fiber.addObserver((exit) => {
      process.off("SIGINT", interrupt)
      process.off("SIGTERM", interrupt)
      resolve(exitCodeOf(exit))
    })
  })

const exitCodeOf = (exit: Exit.Exit<number, CliFailure>): number => {
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    process.stderr.write(`tessera: ${failure.value.message}\n`)
    return EXIT_FAILED
  }
  if (Cause.isInterruptedOnly(exit.cause)) {
    process.stderr.write("tessera: interrupted\n")
    return EXIT_INTERRUPTED
  }
  process.stderr.write(`tessera: unexpected error\n${Cause.pretty(exit.cause)}\n`)
  return EXIT_FAILED
}
