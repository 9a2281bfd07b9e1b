/**
 * Progress of an audit on stderr, counts only. On a terminal one line rewrites itself (at most ten times a second)
 * and is cleared at the end; otherwise one line per batch of the scan. A log that fits in one batch shows nothing.
 * A command that prints while it scans gets whole lines on a terminal too when stdout is that terminal as well:
 * a rewritten line would end up in the middle of its output.
 */
import { Effect } from "effect"

export interface Progress {
  readonly onProgress: (eventsDone: number, total: number) => Effect.Effect<void>
  readonly finish: Effect.Effect<void>
}

const REDRAW_MS = 100

export const progressOnStderr = (label: string, options: { readonly printsWhileScanning: boolean }): Progress => {
  const terminal = process.stderr.isTTY === true && !(options.printsWhileScanning && process.stdout.isTTY === true)
  let reports = 0
  let drawnAt: number | undefined
  return {
    onProgress: (done, total) =>
      Effect.sync(() => {
        reports++
        if (reports === 1 && done >= total) return
        const line = `${label}: ${done} of ${total} events`
        if (!terminal) {
          process.stderr.write(line + "\n")
          return
        }
        const now = Date.now()
        if (drawnAt !== undefined && now - drawnAt < REDRAW_MS && done < total) return
        drawnAt = now
        process.stderr.write(`\r${line}\x1b[K`)
      }),
    finish: Effect.sync(() => {
      if (drawnAt !== undefined) process.stderr.write("\r\x1b[K")
    })
  }
}
