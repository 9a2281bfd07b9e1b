/**
 * The life of one-time codes (customer activation, host device enrollment): issued with an expiry, superseded when
 * reissued, used once. Codes are known only by their keyed hash.
 */
export type CodeStatus = "pending" | "used" | "superseded" | "revoked"

export interface IssuedCodes {
  /** Keyed hash of each code ever issued on this account, with what became of it. */
  readonly statuses: Readonly<Record<string, CodeStatus>>
  readonly pending: { readonly codeHash: string; readonly expiresAt: number } | undefined
}

export const noCodes: IssuedCodes = { statuses: {}, pending: undefined }

export type CodeRejection = "unknown" | "expired" | "used" | "superseded"

/** Why a presented code cannot be used now, or undefined when it can. */
export const checkCode = (codes: IssuedCodes, codeHash: string, now: number): CodeRejection | undefined => {
  const status = codes.statuses[codeHash]
  if (status === undefined || status === "revoked") return "unknown"
  if (status === "used") return "used"
  if (status === "superseded") return "superseded"
  if (codes.pending === undefined || codes.pending.codeHash !== codeHash) return "unknown"
  if (now >= codes.pending.expiresAt) return "expired"
  return undefined
}

export const codeIssued = (codes: IssuedCodes, codeHash: string, expiresAt: number): IssuedCodes => ({
  statuses: { ...codes.statuses, [codeHash]: "pending" },
  pending: { codeHash, expiresAt }
})

export const codeEnded = (codes: IssuedCodes, codeHash: string, status: Exclude<CodeStatus, "pending">): IssuedCodes => ({
  statuses: { ...codes.statuses, [codeHash]: status },
  pending: codes.pending?.codeHash === codeHash ? undefined : codes.pending
})

/** Ends the pending code, if any (a revocation or deletion makes it worthless). */
export const pendingEnded = (codes: IssuedCodes, status: Exclude<CodeStatus, "pending">): IssuedCodes =>
  codes.pending === undefined ? codes : codeEnded(codes, codes.pending.codeHash, status)
