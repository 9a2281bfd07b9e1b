/** Loaded into the Chromium test page: exposes src/crypto and the vector suites to page.evaluate as `tessera`. */
import * as crypto from "../../src/crypto/index.js"
import { runWycheproof } from "./wycheproof-suites.js"

const state: Record<string, unknown> = {}

Object.assign(globalThis, { tessera: { ...crypto, runWycheproof, state } })
