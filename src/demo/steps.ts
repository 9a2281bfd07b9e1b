/**
 * The demo's steps in order, as main.ts prints them: "✓ TITLE" (sometimes followed by " — detail") or
 * "✗ TITLE: why". The test checks every one of them against the output.
 */
export const PROFILE = { name: "Erika Mustermann", customerNumber: "K-4711" } as const

export const STEPS = {
  operatorEnrollsHost: "operator enrolls a host (tessera host enroll)",
  serverStarted: "server started",
  clientsStarted: "host and customer clients started, each in its own process",
  hostEnrollsDevice: "host enrolls its device: new key pair, signed config and profile key in its own key store file",
  hostSignsIn: "host device signs in over its WebSocket with its config",
  hostCreatesCustomer: `host creates the account "${PROFILE.name}", customer number "${PROFILE.customerNumber}"`,
  hostIssuesCode: "host issues a one-time activation code and hands it over",
  customerActivates: "customer activates its app: new key pair and signed config in its own key store file",
  hostToldOfActivation: "host is told live of the activation",
  customerSignsIn: "customer app signs in at the server address its config names",
  presence: "both go online and see each other's presence",
  hostCalls: "host calls, the customer's client rings",
  customerAccepts: "customer accepts, the host's client sees it",
  callSecured: "call secured end to end over call.signal: both sides see the same safety code",
  signalling: "signalling passes both ways, sealed end to end",
  hangUp: "host hangs up, the customer's client sees the call end and both destroy the call's keys",
  hostDeletes: "host deletes the account",
  connectionRevoked: "customer's open connection is closed with the revocation (close code 4001)",
  keyStoreEmptied: "customer's key store is emptied",
  configRefused: "customer's config is refused on reconnect (ConfigRevoked)",
  clientsEnded: "both clients close their connections and their processes end",
  serverStopped: "server stopped gracefully (SIGTERM)",
  storageHasNoProfile: "the server's storage holds neither the name nor the customer number",
  auditVerify: "tessera audit verify passes"
} as const

export const STEP_TITLES: ReadonlyArray<string> = Object.values(STEPS)
