/**
 * The words after a command, read strictly (node:util parseArgs): an unknown flag, a missing flag value or a stray
 * word is bad usage. `--help`/`-h` is understood everywhere. Bad usage prints the message and the command's usage
 * on stderr and exits 2; help prints the usage on stdout and exits 0.
 */
import { parseArgs } from "node:util"

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

export interface Words {
  /** Values of the string flags that were given. */
  readonly flags: Readonly<Record<string, string | undefined>>
  readonly positionals: ReadonlyArray<string>
}

/** The parsed words, or the exit code when the command must stop here (help shown, or bad usage answered). */
export const readWords = (
  usage: string,
  args: ReadonlyArray<string>,
  spec: { readonly flags?: ReadonlyArray<string>; readonly positionals: readonly [min: number, max: number] }
): Words | number => {
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries((spec.flags ?? []).map((flag) => [flag, { type: "string" as const }]))
      },
      allowPositionals: true,
      strict: true
    })
  } catch (error) {
    // node's messages go on to explain "--"; the first sentence is the point ("Unknown option '--x'").
    const sentence = (error as Error).message.split(/\.(?:\s|$)/)[0]!
    return badUsage(usage, sentence.charAt(0).toLowerCase() + sentence.slice(1))
  }
  if (parsed.values["help"] === true) return showHelp(usage)
  const [min, max] = spec.positionals
  if (parsed.positionals.length < min) return badUsage(usage, "missing argument")
  if (parsed.positionals.length > max) return badUsage(usage, "too many arguments")
  const flags: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(parsed.values)) if (typeof value === "string") flags[name] = value
  return { flags, positionals: parsed.positionals }
}

export const showHelp = (usage: string): number => {
  process.stdout.write(usage + "\n")
  return EXIT_OK
}

export const badUsage = (usage: string, message?: string): number => {
  process.stderr.write((message === undefined ? "" : `tessera: ${message}\n\n`) + usage + "\n")
  return EXIT_USAGE
}

/** Dispatch for a command with subcommands (`host`, `audit`): help, or the subcommand's own handling. */
export const runSubcommand = (
  usage: string,
  subcommands: Readonly<Record<string, (args: ReadonlyArray<string>) => Promise<number>>>,
  args: ReadonlyArray<string>
): Promise<number> => {
  const [name, ...rest] = args
  if (name === "--help" || name === "-h" || name === "help") return Promise.resolve(showHelp(usage))
  if (name === undefined) return Promise.resolve(badUsage(usage))
  const subcommand = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined
  if (subcommand === undefined) return Promise.resolve(badUsage(usage, `unknown command "${name}"`))
  return subcommand(rest)
}
