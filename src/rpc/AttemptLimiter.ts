/**
 * Counts code redemptions (activation and enrollment codes) per client address, in memory only, so that codes
 * cannot be guessed: every attempt counts from the moment it is made and only a failure as a wrong code keeps
 * counting. An address with too many failures in the window is refused until the window has passed.
 * Addresses are held only as a keyed hash and only as long as their window lasts; they are never logged.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { createHmac, randomBytes } from "node:crypto"
import { TooManyAttempts } from "../domain/errors.js"
import { ServerConfig } from "../server/Config.js"

export class AttemptLimiter extends Context.Tag("tessera/AttemptLimiter")<AttemptLimiter, {
  /**
   * Counts an attempt before it is made, so that attempts sent in parallel cannot all pass a check made before any
   * of them failed; fails while the address is locked out.
   */
  readonly reserve: (address: string) => Effect.Effect<void, TooManyAttempts>
  /** Gives back a reserved attempt that did not fail as a wrong code. */
  readonly refund: (address: string) => Effect.Effect<void>
}>() {}

interface Window {
  startedAt: number
  failures: number
}

export const AttemptLimiterLive = Layer.effect(
  AttemptLimiter,
  Effect.gen(function*() {
    const settings = yield* ServerConfig
    const windowMs = settings.codeAttemptWindowSeconds * 1000
    // A per-process key: the table cannot be turned back into addresses, not even from a memory dump's keys alone.
    const salt = randomBytes(32)
    const windows = new Map<string, Window>()
    const keyOf = (address: string) => createHmac("sha256", salt).update(address).digest("base64url")

    const current = (key: string, now: number) => {
      const window = windows.get(key)
      if (window && now - window.startedAt < windowMs) return window
      if (window) windows.delete(key)
      return undefined
    }
    const sweep = (now: number) => {
      if (windows.size < 10_000) return
      for (const [key, window] of windows) if (now - window.startedAt >= windowMs) windows.delete(key)
    }

    return {
      reserve: (address) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          sweep(now)
          const key = keyOf(address)
          const window = current(key, now)
          if (window && window.failures >= settings.codeAttempts) {
            return Effect.fail(new TooManyAttempts({ retryAfterSeconds: Math.ceil((window.startedAt + windowMs - now) / 1000) }))
          }
          if (window) window.failures++
          else windows.set(key, { startedAt: now, failures: 1 })
          return Effect.void
        }),
      refund: (address) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const window = current(keyOf(address), now)
          if (window && window.failures > 0) window.failures--
        })
    }
  })
)
