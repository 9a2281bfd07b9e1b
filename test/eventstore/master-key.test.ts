import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { MasterKey, MasterKeyConfigError, MasterKeyLive } from "../../src/eventstore/MasterKey.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const deriveWith = (options: Parameters<typeof MasterKeyLive>[0], env: Record<string, string> = {}) =>
  Effect.map(MasterKey, (key) => Buffer.from(key.derive("tessera/test")).toString("hex")).pipe(
    Effect.provide(MasterKeyLive(options)),
    withEnv(env)
  )

const scratchDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "tessera-mk-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("MasterKey", () => {
  it.scoped("embedded: generates master.key (0600, data dir 0700) on first start and reuses it", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* scratchDir, "data")
      const first = yield* deriveWith({ databaseUrl: undefined, dataDir })
      const second = yield* deriveWith({ databaseUrl: Option.none(), dataDir })
      const file = join(dataDir, "master.key")

      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(statSync(dataDir).mode & 0o777).toBe(0o700)
      expect(Buffer.from(readFileSync(file, "utf8").trim(), "base64")).toHaveLength(32)
      expect(second).toBe(first)
      expect(first).toMatch(/^[0-9a-f]{64}$/)
    }))

  it.scoped("an external database without a configured key is a typed configuration error", () =>
    Effect.gen(function*() {
      const dataDir = yield* scratchDir
      const error = yield* Effect.flip(deriveWith({ databaseUrl: "postgres://db.example/tessera", dataDir }))
      expect(error).toBeInstanceOf(MasterKeyConfigError)
      expect(error.reason).toBe("missing")
      expect(error.message).toContain("TESSERA_MASTER_KEY")
      expect(() => statSync(join(dataDir, "master.key"))).toThrow()
    }))

  it.scoped("TESSERA_MASTER_KEY as hex, base64 or base64url, or TESSERA_MASTER_KEY_FILE: the same key derives the same sub-keys", () =>
    Effect.gen(function*() {
      const dir = yield* scratchDir
      const key = randomBytes(32)
      const external = { databaseUrl: "postgres://db.example/tessera", dataDir: dir }
      const file = join(dir, "key.txt")
      writeFileSync(file, key.toString("base64") + "\n")
      const raw = join(dir, "key.bin")
      writeFileSync(raw, key)

      const derived = yield* Effect.all([
        deriveWith(external, { TESSERA_MASTER_KEY: key.toString("hex") }),
        deriveWith(external, { TESSERA_MASTER_KEY: key.toString("base64") }),
        deriveWith(external, { TESSERA_MASTER_KEY: key.toString("base64url") }),
        deriveWith(external, { TESSERA_MASTER_KEY_FILE: file }),
        deriveWith(external, { TESSERA_MASTER_KEY_FILE: raw })
      ])
      expect(new Set(derived).size).toBe(1)
      const other = yield* deriveWith(external, { TESSERA_MASTER_KEY: randomBytes(32).toString("hex") })
      expect(other).not.toBe(derived[0])
    }))

  it.scoped("a malformed key or an unreadable key file is refused with the reason", () =>
    Effect.gen(function*() {
      const dataDir = yield* scratchDir
      const embedded = { databaseUrl: undefined, dataDir }
      const short = yield* Effect.flip(deriveWith(embedded, { TESSERA_MASTER_KEY: randomBytes(16).toString("hex") }))
      const missingFile = yield* Effect.flip(deriveWith(embedded, { TESSERA_MASTER_KEY_FILE: join(dataDir, "nope") }))
      expect([short.reason, missingFile.reason]).toEqual(["invalid", "unreadable"])
      // Neither error message carries key material.
      expect(short.message).not.toMatch(/[0-9a-f]{16}/)
    }))

  it("derive: distinct purposes give distinct keys, and callers cannot corrupt the cache", () => {
    const key = Effect.runSync(Effect.provide(MasterKey, MasterKey.fromBytes(new Uint8Array(32).fill(7))))
    const a = key.derive("tessera/data-key-wrap")
    a.fill(0)
    expect(Buffer.from(key.derive("tessera/data-key-wrap"))).not.toEqual(Buffer.alloc(32))
    expect(Buffer.from(key.derive("tessera/lookup-index"))).not.toEqual(Buffer.from(key.derive("tessera/data-key-wrap")))
    expect(key.derive("tessera/lookup-index")).toHaveLength(32)
  })
})
