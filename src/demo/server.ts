/**
 * The demo's server process: exactly `src/server/main.ts`, forked by the coordinator with an IPC channel only so that
 * the server stops (gracefully, as on SIGTERM) when the coordinator goes away, even if it was killed outright.
 */
let signalled = false
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => (signalled = true))
process.on("disconnect", () => {
  if (!signalled) process.kill(process.pid, "SIGTERM")
})
await import("../server/main.js")
