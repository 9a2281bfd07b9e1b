/**
 * The config file a device receives when it activates (customer) or enrolls (host device). The server signs its
 * canonical form; on every connect the server checks that signature and that the account still stands.
 */
import { Schema } from "effect"
import { CommunicationId, DeviceId, HostId } from "./ids.js"

const Base64Url = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]*$/), Schema.maxLength(4096))
const Fingerprint = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))

export class CustomerConfigBody extends Schema.Class<CustomerConfigBody>("CustomerConfigBody")({
  version: Schema.Literal(1),
  kind: Schema.Literal("customer"),
  communicationId: CommunicationId,
  serverAddress: Schema.String.pipe(Schema.maxLength(512)),
  hostContact: HostId,
  /** SPKI (base64url) of the host's device identity keys at activation; `customer.hostKeys` gives the current set. */
  hostIdentityKeys: Schema.Array(Base64Url).pipe(Schema.maxItems(16)),
  deviceFingerprint: Fingerprint,
  issuedAt: Schema.Number
}) {}

export class HostConfigBody extends Schema.Class<HostConfigBody>("HostConfigBody")({
  version: Schema.Literal(1),
  kind: Schema.Literal("host"),
  hostId: HostId,
  deviceId: DeviceId,
  serverAddress: Schema.String.pipe(Schema.maxLength(512)),
  deviceFingerprint: Fingerprint,
  issuedAt: Schema.Number
}) {}

export const ConfigBody = Schema.Union(CustomerConfigBody, HostConfigBody)
export type ConfigBody = typeof ConfigBody.Type

export class SignedConfig extends Schema.Class<SignedConfig>("SignedConfig")({
  body: ConfigBody,
  /** Ed25519 signature (base64url) by the server over `canonicalJson(body)`. */
  signature: Base64Url
}) {}

/** JSON with object keys sorted at every level: the one byte string that is signed and verified. */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
}

/** What a device signs to prove possession of its key on one connection: domain-separated, bound to the nonce. */
export const authenticationMessage = (nonce: string, deviceFingerprint: string): string =>
  `tessera/authenticate/v1\n${nonce}\n${deviceFingerprint}`
