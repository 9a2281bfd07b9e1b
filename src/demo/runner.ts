/**
 * How both demos run their story: one line per step ("✓ TITLE — detail" or "✗ TITLE: why"), a timeout per step,
 * and an interruption (a process dying, Ctrl-C) that fails the step under way at once. A failure reason may quote a
 * server or SDK message, so it is redacted: it never shows a code, key, id or address.
 */
export class StepFailed extends Error {}

export const redact = (text: string): string =>
  text
    .replace(/wss?:\/\/\S+|https?:\/\/\S+|postgres(?:ql)?:\/\/\S+/gi, "<address>")
    .replace(/\b[hcdmk]_[0-9A-Za-z_-]{22}\b/g, "<id>")
    .replace(/\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b/g, "<code>")
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, "<address>")
    .replace(/\[?(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]?(?=\W|$)/gi, (match) => (match.includes("::") ? "<address>" : match))
    .replace(/[A-Za-z0-9+/_-]{32,}={0,2}/g, "<redacted>")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 300)

export const say = (line: string) => process.stdout.write(`${line}\n`)

export const check = (condition: boolean, message: string) => {
  if (!condition) throw new Error(message)
}

export interface StepRunner {
  readonly step: <A>(title: string, seconds: number, body: () => Promise<A>, detail?: (result: A) => string | undefined) => Promise<A>
  /** Fails the step under way, and every later one, with this error. */
  readonly interrupt: (error: Error) => void
  readonly stepsDone: () => number
}

export const makeStepRunner = (): StepRunner => {
  let interruption: Error | undefined
  let interruptCurrent: ((error: Error) => void) | undefined
  let done = 0
  return {
    interrupt: (error) => {
      interruption ??= error
      interruptCurrent?.(error)
    },
    stepsDone: () => done,
    step: async (title, seconds, body, detail) => {
      let timer: NodeJS.Timeout | undefined
      try {
        if (interruption !== undefined) throw interruption
        const result = await Promise.race([
          body(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${seconds} s`)), seconds * 1000)
            interruptCurrent = reject
          })
        ])
        const more = detail?.(result)
        say(`✓ ${title}${more === undefined ? "" : ` — ${more}`}`)
        done++
        return result
      } catch (error) {
        say(`✗ ${title}: ${redact(error instanceof Error ? error.message : String(error)) || "failed"}`)
        throw new StepFailed(title)
      } finally {
        clearTimeout(timer)
        interruptCurrent = undefined
      }
    }
  }
}
