/**
 * The tessera client SDK, for Node and the browser: the typed RPC client of the public contract, device onboarding,
 * signing in, live events, end-to-end secured calls, and key storage behind an interface. Platform entries
 * (./node.ts, ./browser.ts) add the WebSocket implementation and the platform's key store.
 */
export * from "./CallSecurity.js"
export * from "./callErrors.js"
export * from "./Connection.js"
export * from "./DeviceSession.js"
export * from "./KeyStore.js"
export * from "./Onboarding.js"
export * from "./profile.js"
export * from "./Conference.js"
