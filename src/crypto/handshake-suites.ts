/** The call handshake's suites: which MODP group, under which policy. */
import { MODP_GROUP_14, MODP_GROUP_15, type ModpGroup } from "./modp.js"

export const HANDSHAKE_VERSION = 1

export interface HandshakeSuite {
  readonly id: number
  readonly name: string
  readonly group: ModpGroup
  /** Allowed only when the party opted in explicitly. */
  readonly compatibility: boolean
}

/** In order of preference. Identity RSA-PSS-4096/SHA-256, HKDF-SHA-256, AES-256-GCM signalling, SFrame 0x0006. */
export const HANDSHAKE_SUITES: ReadonlyArray<HandshakeSuite> = [
  { id: 0x0001, name: "MODP3072_RSAPSS4096_SHA256_AES256GCM_SFRAME0006", group: MODP_GROUP_15, compatibility: false },
  { id: 0x0002, name: "MODP2048_RSAPSS4096_SHA256_AES256GCM_SFRAME0006", group: MODP_GROUP_14, compatibility: true }
]

export const suiteById = (id: number): HandshakeSuite | undefined => HANDSHAKE_SUITES.find((s) => s.id === id)

export const allowedSuites = (allowCompatibilityGroup14: boolean | undefined): ReadonlyArray<HandshakeSuite> =>
  HANDSHAKE_SUITES.filter((s) => !s.compatibility || allowCompatibilityGroup14 === true)
