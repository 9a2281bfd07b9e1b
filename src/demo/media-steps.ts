/**
 * The media demo's steps and result lines, as media.ts prints them: "✓ TITLE" (sometimes " — detail") or
 * "✗ TITLE: why", and per call and side "✓ CALL call, SIDE: mode MODE, SFrame suite 0xSUITE, framesDecoded N".
 * The test checks the output against these.
 */
export const MEDIA_STEPS = {
  operatorEnrollsHost: "operator enrolls a host (tessera host enroll)",
  serverStarted: "server started with its media relay (one mediasoup worker)",
  browserStarted: "headless Chromium started: one page for the host, one for the customer (fake camera and microphone)",
  hostEnrollsDevice: "host enrolls its browser device, creates a customer and issues an activation code",
  customerActivates: "customer activates its app in the browser",
  presence: "host sees the customer online",
  serverStopped: "server stopped gracefully (SIGTERM)"
} as const

/** The calls of the demo, in order: who receives with which key, and the path the media must take. */
export const MEDIA_CALLS = [
  { name: "peer-to-peer", policy: "p2p", mode: "p2p", wrongKeyAt: undefined },
  { name: "forced-relay", policy: "relay", mode: "relay", wrongKeyAt: undefined },
  { name: "wrong-key", policy: "relay", mode: "relay", wrongKeyAt: "customer" }
] as const

export type MediaCall = (typeof MEDIA_CALLS)[number]
export type Side = "host" | "customer"

export const callSecuredTitle = (call: MediaCall) => `${call.name} call: host calls, customer answers, secured end to end`

/** The line for one side of one call; a receiver with the wrong key is marked. */
export const resultTitle = (call: MediaCall, side: Side, figures: { readonly mode: string; readonly suite: number; readonly framesDecoded: number }) =>
  `${call.name} call, ${side}${call.wrongKeyAt === side ? " (wrong key)" : ""}: mode ${figures.mode}, SFrame suite 0x${
    figures.suite.toString(16).padStart(4, "0")
  }, framesDecoded ${figures.framesDecoded}`

/** What the test reads back from a result line. */
export const RESULT_LINE = /^✓ (\S+) call, (host|customer)( \(wrong key\))?: mode (p2p|relay), SFrame suite (0x[0-9a-f]{4}), framesDecoded (\d+)/m
