/**
 * Real headless Chromium for tests. `openBrowserPage({ entry })` bundles a TypeScript entry with esbuild into a
 * temporary directory (never into the repo), serves it from a loopback HTTP server on an ephemeral port, launches
 * /usr/bin/chromium through playwright-core and opens the page; `close()` tears all of it down.
 *
 *   const browser = await openBrowserPage({ entry: path.join(here, "browser-entry.ts") })
 *   try { await browser.page.evaluate(() => ...) } finally { await browser.close() }
 *
 * Effect tests can use `browserPage(options)`, which closes everything when the scope closes. http://127.0.0.1 is a
 * secure context, so WebCrypto and getUserMedia (fake devices) are available to the page.
 */
import * as Effect from "effect/Effect"
import { build } from "esbuild"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import path from "node:path"
import { chromium, type Browser, type Page } from "playwright-core"

export const CHROMIUM_PATH = process.env["TESSERA_CHROMIUM"] ?? "/usr/bin/chromium"

export const CHROMIUM_ARGS: ReadonlyArray<string> = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection"
]

export interface StaticFile {
  readonly body: string | Uint8Array
  readonly contentType: string
}

export interface BrowserPageOptions {
  /** TypeScript/JavaScript module to bundle and load as /bundle.js. */
  readonly entry: string
  /** Extra files served by path (e.g. "/vectors/x.json"). */
  readonly files?: Readonly<Record<string, StaticFile>>
  /** esbuild `define` replacements for the bundle. */
  readonly define?: Readonly<Record<string, string>>
}

export interface BrowserPage {
  readonly browser: Browser
  readonly page: Page
  /** The page's origin, e.g. http://127.0.0.1:40123 */
  readonly origin: string
  /** Uncaught errors and console errors the page produced so far. */
  readonly pageErrors: ReadonlyArray<string>
  readonly close: () => Promise<void>
}

/** Bundles `entry` for the browser into `outDir`/bundle.js (ESM, current Chromium). */
export const bundleForBrowser = async (
  entry: string,
  outDir: string,
  define: Readonly<Record<string, string>> = {}
): Promise<string> => {
  const outfile = path.join(outDir, "bundle.js")
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "chrome120",
    sourcemap: "inline",
    logLevel: "silent",
    define: { ...define }
  })
  return outfile
}

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>tessera test</title></head>
<body><script type="module" src="/bundle.js"></script></body></html>`

const listen = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

export const openBrowserPage = async (options: BrowserPageOptions): Promise<BrowserPage> => {
  const dir = await mkdtemp(path.join(tmpdir(), "tessera-browser-"))
  const cleanups: Array<() => Promise<unknown>> = [() => rm(dir, { recursive: true, force: true })]
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
    cleanups.length = 0
  }
  try {
    const bundle = await readFile(await bundleForBrowser(options.entry, dir, options.define))
    const files: Record<string, StaticFile> = {
      "/": { body: PAGE_HTML, contentType: "text/html; charset=utf-8" },
      "/bundle.js": { body: bundle, contentType: "text/javascript; charset=utf-8" },
      ...options.files
    }
    const server = createServer((req, res) => {
      const pathname = new URL(req.url ?? "/", "http://127.0.0.1").pathname
      if (pathname === "/favicon.ico") {
        res.writeHead(204).end()
        return
      }
      const file = files[pathname]
      if (!file || req.method !== "GET") {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { "content-type": file.contentType, "cache-control": "no-store" }).end(file.body)
    })
    const port = await listen(server)
    cleanups.push(() => closeServer(server))
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] })
    cleanups.push(() => browser.close())
    const page = await browser.newPage()
    const pageErrors: Array<string> = []
    page.on("pageerror", (e) => pageErrors.push(e.message))
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text())
    })
    const origin = `http://127.0.0.1:${port}`
    await page.goto(origin + "/", { waitUntil: "load" })
    return { browser, page, origin, pageErrors, close }
  } catch (e) {
    await close()
    throw e
  }
}

/** `openBrowserPage` as a scoped resource. */
export const browserPage = (options: BrowserPageOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => openBrowserPage(options)),
    (b) => Effect.promise(() => b.close())
  )
