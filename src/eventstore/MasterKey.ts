/**
 * The server's master key: 32 bytes from configuration, never from (or in) the database. Everything secret the
 * server keeps at rest hangs off sub-keys derived from it, so losing it makes that data unreadable by design.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { hkdfSync, randomBytes } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { databaseUrlOf, type DatabaseOptions } from "./Database.js"

export class MasterKeyConfigError extends Schema.TaggedError<MasterKeyConfigError>()("MasterKeyConfigError", {
  reason: Schema.Literal("missing", "invalid", "unreadable"),
  message: Schema.String
}) {}

export interface MasterKeyService {
  /** HKDF-SHA-256 (salt: none, info: the purpose) of the master key, 32 bytes, e.g. "tessera/data-key-wrap". */
  readonly derive: (purpose: string) => Uint8Array
}

export class MasterKey extends Context.Tag("tessera/MasterKey")<MasterKey, MasterKeyService>() {
  /** A fixed key, for tests and tools that already hold one. */
  static readonly fromBytes = (key: Uint8Array): Layer.Layer<MasterKey> => Layer.succeed(MasterKey, makeService(key))
}

export const MASTER_KEY_FILE_NAME = "master.key"

const makeService = (key: Uint8Array): MasterKeyService => {
  if (key.length !== 32) throw new TypeError("master key must be 32 bytes")
  const master = Buffer.from(key)
  const derived = new Map<string, Uint8Array>()
  return {
    derive: (purpose) => {
      let subKey = derived.get(purpose)
      if (subKey === undefined) {
        subKey = new Uint8Array(hkdfSync("sha256", master, Buffer.alloc(0), Buffer.from(purpose, "utf8"), 32))
        derived.set(purpose, subKey)
      }
      // A copy, so that no caller can corrupt the cached sub-key for everyone else.
      return subKey.slice()
    }
  }
}

/**
 * Where the key comes from, in order: TESSERA_MASTER_KEY (base64, base64url or hex of 32 bytes), then the file at
 * TESSERA_MASTER_KEY_FILE, then — only with the embedded database — `${dataDir}/master.key`, generated on first
 * start (mode 0600, directory 0700) and reused afterwards. With an external DATABASE_URL and no key configured the
 * layer fails: a key invented here would be missing in the next process, and every data key with it.
 */
export const MasterKeyLive = (
  options: Pick<DatabaseOptions, "databaseUrl" | "dataDir">
): Layer.Layer<MasterKey, MasterKeyConfigError> =>
  Layer.effect(
    MasterKey,
    Effect.gen(function*() {
      const fromEnv = yield* Config.option(Config.redacted("TESSERA_MASTER_KEY")).pipe(Effect.orDie)
      const fromFile = yield* Config.option(Config.string("TESSERA_MASTER_KEY_FILE")).pipe(Effect.orDie)
      const key = yield* Option.match(Option.filter(fromEnv, (value) => Redacted.value(value).trim() !== ""), {
        onSome: (value) => parseKey(Redacted.value(value), "TESSERA_MASTER_KEY"),
        onNone: () =>
          Option.match(Option.filter(fromFile, (value) => value.trim() !== ""), {
            onSome: (file) => readKeyFile(file, "TESSERA_MASTER_KEY_FILE"),
            onNone: () =>
              Option.isSome(databaseUrlOf(options.databaseUrl))
                ? Effect.fail(
                  new MasterKeyConfigError({
                    reason: "missing",
                    message:
                      "DATABASE_URL is set but no master key is configured: set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE"
                  })
                )
                : embeddedKey(options.dataDir)
          })
      })
      return makeService(key)
    })
  )

/** The file's content is the key as text (base64, base64url or hex, surrounding whitespace ignored) or 32 raw bytes. */
const readKeyFile = (file: string, source: string) =>
  Effect.try({
    try: () => readFileSync(file),
    catch: () => new MasterKeyConfigError({ reason: "unreadable", message: `${source}: cannot read the key file` })
  }).pipe(Effect.flatMap((content) => content.length === 32 ? Effect.succeed(new Uint8Array(content)) : parseKey(content.toString("utf8"), source)))

const parseKey = (text: string, source: string): Effect.Effect<Uint8Array, MasterKeyConfigError> => {
  const value = text.trim()
  let bytes: Buffer | undefined
  if (/^[0-9a-fA-F]{64}$/.test(value)) {
    bytes = Buffer.from(value, "hex")
  } else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(value)) {
    bytes = Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64")
  }
  return bytes !== undefined && bytes.length === 32
    ? Effect.succeed(new Uint8Array(bytes))
    : Effect.fail(
      new MasterKeyConfigError({ reason: "invalid", message: `${source}: expected 32 bytes as base64, base64url or hex` })
    )
}

const embeddedKey = (dataDir: string) => {
  const root = resolve(dataDir)
  const file = join(root, MASTER_KEY_FILE_NAME)
  return Effect.try({
    try: () => {
      mkdirSync(root, { recursive: true, mode: 0o700 })
      try {
        // "wx": never overwrite a key another start (or another process) already wrote.
        writeFileSync(file, randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" })
        chmodSync(file, 0o600)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
      }
    },
    catch: () => new MasterKeyConfigError({ reason: "unreadable", message: "cannot create the master key file in the data directory" })
  }).pipe(Effect.zipRight(readKeyFile(file, "master key file in the data directory")))
}
