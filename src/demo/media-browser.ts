/**
 * Real headless Chromium for the media demo: the browser device (media-entry.ts) bundled with esbuild into a
 * temporary directory, served from a loopback HTTP server on an ephemeral port (http://127.0.0.1 is a secure
 * context: WebCrypto, getUserMedia), and Debian's Chromium through playwright-core with a fake camera and
 * microphone. One page per party, each in its own browser context (its own storage, as two devices).
 */
import { build } from "esbuild"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { chromium, type Page } from "playwright-core"

const ENTRY = fileURLToPath(new URL("./media-entry.ts", import.meta.url))
const CHROMIUM = process.env["TESSERA_CHROMIUM"] ?? "/usr/bin/chromium"
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection"
]
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>tessera media demo</title></head>
<body><script type="module" src="/bundle.js"></script></body></html>`

export interface DemoBrowser {
  /** A fresh page in its own context, with the device loaded. */
  readonly newDevicePage: () => Promise<Page>
  readonly close: () => Promise<void>
}

export const openDemoBrowser = async (): Promise<DemoBrowser> => {
  const dir = await mkdtemp(join(tmpdir(), "tessera-media-demo-"))
  const cleanups: Array<() => Promise<unknown>> = [() => rm(dir, { recursive: true, force: true })]
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined)
    cleanups.length = 0
  }
  try {
    const outfile = join(dir, "bundle.js")
    await build({ entryPoints: [ENTRY], outfile, bundle: true, format: "esm", platform: "browser", target: "chrome120", logLevel: "silent" })
    const bundle = await readFile(outfile)
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname
      if (req.method !== "GET") res.writeHead(405).end()
      else if (path === "/") res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE)
      else if (path === "/bundle.js") res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(bundle)
      else res.writeHead(404).end()
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
    })
    cleanups.push(() =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    )
    // Signals are the caller's to handle (it closes the browser on its way out); exiting still kills Chromium.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false
    })
    cleanups.push(() => browser.close())
    const newDevicePage = async () => {
      const context = await browser.newContext()
      const page = await context.newPage()
      await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" })
      await page.waitForFunction(() => "tesseraMediaDevice" in globalThis)
      return page
    }
    return { newDevicePage, close }
  } catch (error) {
    await close()
    throw error
  }
}
