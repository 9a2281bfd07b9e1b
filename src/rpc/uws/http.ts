// Plain HTTP on the uWS app: a route table consulted by one catch-all uWS handler, so routes can be added while the
// server is listening.
//
// uWS rules honoured here: the HttpRequest is only valid during the handler call, so method, path, query and
// headers are copied first; body chunks are copied as they arrive (uWS neuters them on return); a response that is
// not sent synchronously needs an abort handler, and after an abort the response must not be touched again.
import { STATUS_CODES } from "node:http"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type { HttpRequest, HttpResponse } from "./native.js"

export type HttpMethod = "get" | "post"

export interface HttpRouteRequest {
  readonly method: HttpMethod
  /** The path without the query string. */
  readonly path: string
  /** The raw query string, without `?`. */
  readonly query: string
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>
  /** The request body; empty for GET. */
  readonly body: Uint8Array
}

export interface HttpRouteResponse {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body: string | Uint8Array
}

/** A route handler. A failure or defect is answered with 500 and no detail. */
export type HttpRouteHandler = (request: HttpRouteRequest) => Effect.Effect<HttpRouteResponse, unknown>

interface Route {
  /** `"get /healthz"`: the registered pattern, safe to log (a request path may carry codes or ids). */
  readonly pattern: string
  readonly handler: HttpRouteHandler
}

/**
 * Routes by method and path: an exact path, or a prefix written as `"/static/*"` (longest prefix wins).
 */
export class RouteTable {
  #exact = new Map<string, Route>()
  #prefixes: Array<Route & { readonly prefix: string }> = []

  add(method: HttpMethod, path: string, handler: HttpRouteHandler): void {
    if (path.endsWith("/*")) {
      const prefix = path.slice(0, -1)
      const pattern = `${method} ${path}`
      this.#prefixes = this.#prefixes.filter((route) => route.pattern !== pattern)
      this.#prefixes.push({ pattern, prefix, handler })
      this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length)
    } else {
      const pattern = `${method} ${path}`
      this.#exact.set(pattern, { pattern, handler })
    }
  }

  find(method: string, path: string): Route | undefined {
    const exact = this.#exact.get(`${method} ${path}`)
    if (exact !== undefined) return exact
    for (const route of this.#prefixes) {
      if (route.pattern.startsWith(method + " ") && path.startsWith(route.prefix)) return route
    }
    return undefined
  }
}

const statusLine = (status: number): string => `${status} ${STATUS_CODES[status] ?? "Unknown"}`

const textResponse = (status: number): HttpRouteResponse => ({
  status,
  headers: { "content-type": "text/plain; charset=utf-8" },
  body: STATUS_CODES[status] ?? ""
})

const writeResponse = (res: HttpResponse, response: HttpRouteResponse, closeConnection: boolean): void => {
  res.cork(() => {
    res.writeStatus(statusLine(response.status))
    if (response.headers !== undefined) {
      for (const name in response.headers) res.writeHeader(name, response.headers[name]!)
    }
    res.end(response.body, closeConnection)
  })
}

export interface HttpDispatchOptions {
  readonly routes: RouteTable
  readonly runtime: Runtime.Runtime<never>
  readonly maxBodyBytes: number
  /** True once shutdown began: requests are answered 503 and their connections closed. */
  readonly isShuttingDown: () => boolean
}

/** The catch-all uWS handler. */
export const makeHttpDispatcher = (options: HttpDispatchOptions) => {
  const runFork = Runtime.runFork(options.runtime)

  return (res: HttpResponse, req: HttpRequest): void => {
    const method = req.getMethod()
    const path = req.getUrl()
    if (options.isShuttingDown()) {
      writeResponse(res, textResponse(503), true)
      return
    }
    const route = method === "get" || method === "post" ? options.routes.find(method, path) : undefined
    if (route === undefined) {
      writeResponse(res, textResponse(404), false)
      return
    }
    const query = req.getQuery() ?? ""
    const headers: Record<string, string> = {}
    req.forEach((name, value) => {
      headers[name] = value
    })

    let done = false
    let fiber: Fiber.RuntimeFiber<HttpRouteResponse, unknown> | undefined
    res.onAborted(() => {
      done = true
      if (fiber !== undefined) fiber.unsafeInterruptAsFork(fiber.id())
    })

    const run = (body: Uint8Array) => {
      fiber = runFork(Effect.suspend(() => route.handler({ method: method as HttpMethod, path, query, headers, body })))
      fiber.addObserver((exit) => {
        if (done) return
        done = true
        if (Exit.isSuccess(exit)) {
          writeResponse(res, exit.value, false)
        } else {
          if (!Cause.isInterruptedOnly(exit.cause)) {
            runFork(Effect.logError("HTTP route handler failed").pipe(Effect.annotateLogs("route", route.pattern)))
          }
          writeResponse(res, textResponse(500), false)
        }
      })
    }

    if (method !== "post") {
      run(new Uint8Array(0))
      return
    }
    const chunks: Array<Uint8Array> = []
    let received = 0
    res.onData((chunk, isLast) => {
      if (done) return
      received += chunk.byteLength
      if (received > options.maxBodyBytes) {
        done = true
        writeResponse(res, textResponse(413), true)
        return
      }
      chunks.push(new Uint8Array(chunk.slice(0)))
      if (!isLast) return
      if (chunks.length === 1) {
        run(chunks[0]!)
        return
      }
      const body = new Uint8Array(received)
      let offset = 0
      for (const part of chunks) {
        body.set(part, offset)
        offset += part.byteLength
      }
      run(body)
    })
  }
}
