#!/usr/bin/env node
// Launcher for the operator CLI: loads src/cli/main.ts through tsx in this process, so `npx tessera` works from a
// checkout without a build step. main.ts sets the exit code.
import { fileURLToPath } from "node:url"
import { register } from "tsx/esm/api"

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) })
await import(new URL("../src/cli/main.ts", import.meta.url).href)
