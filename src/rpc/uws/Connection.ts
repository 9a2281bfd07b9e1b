// One accepted WebSocket and its outgoing queue.
//
// uWS writes straight to the socket and keeps whatever the kernel does not take in its own buffer, without limit.
// Messages therefore go through a queue here first: they are handed to uWS (corked, one batch per event-loop turn)
// only while uWS holds at most `maxBackpressureBytes`, the rest waits for the `drain` event, and a peer that lets
// the queue grow past `maxQueuedBytes` is closed instead of being allowed to eat the server's memory.
import { SendStatus, type WebSocket } from "./native.js"

export type Frame = Uint8Array | string

export interface ConnectionLimits {
  readonly maxBackpressureBytes: number
  readonly maxQueuedBytes: number
}

/** What uWS keeps per socket (`ws.getUserData()`): the connection, set once it is open. */
export interface SocketData {
  connection: Connection | undefined
}

/** Close codes used by the transport itself. */
export const CloseCode = {
  GoingAway: 1001,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009
} as const

// A string frame's size is counted in UTF-16 code units; that is exact for ASCII and within a small factor
// otherwise, which is all a memory bound needs.
const frameBytes = (frame: Frame): number => typeof frame === "string" ? frame.length : frame.byteLength

export class Connection {
  #ws: WebSocket<SocketData>
  #queue: Array<Frame> = []
  #head = 0
  #queuedBytes = 0
  #flushScheduled = false
  #closed = false

  constructor(
    readonly id: number,
    ws: WebSocket<SocketData>,
    readonly remoteAddress: string,
    private readonly limits: ConnectionLimits,
    private readonly scheduleFlush: (connection: Connection) => void
  ) {
    this.#ws = ws
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Bytes waiting in this connection's own queue (not yet handed to uWS). */
  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** Queues one frame; it is sent on the next flush. Frames for a closed connection are dropped. */
  write(frame: Frame): void {
    if (this.#closed) return
    this.#queue.push(frame)
    this.#queuedBytes += frameBytes(frame)
    if (this.#queuedBytes > this.limits.maxQueuedBytes) {
      this.close(CloseCode.PolicyViolation, "send queue limit exceeded")
      return
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      this.scheduleFlush(this)
    }
  }

  /** Hands queued frames to uWS while its buffer is under the backpressure limit. Called on flush and on drain. */
  flush(): void {
    this.#flushScheduled = false
    if (this.#closed || this.#head === this.#queue.length) return
    const ws = this.#ws
    ws.cork(() => {
      const queue = this.#queue
      while (this.#head < queue.length && ws.getBufferedAmount() <= this.limits.maxBackpressureBytes) {
        const frame = queue[this.#head]!
        // DROPPED cannot happen while we stay under uWS's own limit; should it happen anyway, keep the frame for
        // the next drain instead of losing it.
        if (ws.send(frame, typeof frame !== "string") === SendStatus.Dropped) break
        queue[this.#head] = undefined as never
        this.#head++
        this.#queuedBytes -= frameBytes(frame)
      }
    })
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }

  /**
   * Sends what fits of the queue, then closes with a close frame. uWS calls the close handler synchronously,
   * which calls `markClosed`. Closing a closed connection does nothing.
   */
  close(code: number, reason: string): void {
    if (this.#closed) return
    this.flush()
    this.#ws.end(code, reason)
    this.markClosed()
  }

  /** Called from uWS's close handler: from here on the ws must not be touched. */
  markClosed(): void {
    this.#closed = true
    this.#queue = []
    this.#head = 0
    this.#queuedBytes = 0
  }
}
