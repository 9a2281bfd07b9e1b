/**
 * Activation and enrollment codes: 12 Crockford base32 symbols (60 bits of entropy), shown in three groups of four
 * so that a person can read them out and type them. Parsing forgives case, spaces, dashes and the usual look-alikes
 * (I and L read as 1, O as 0), as Crockford's alphabet intends.
 */
export const CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
export const CODE_SYMBOLS = 12
export const CODE_ENTROPY_BITS = CODE_SYMBOLS * 5

/** At most seven days, whatever the host asks for. */
export const MAX_CODE_VALIDITY_SECONDS = 7 * 24 * 60 * 60

/** Formats 12 symbols from 60 random bits (the caller supplies at least 8 random bytes). */
export const formatActivationCode = (random: Uint8Array): string => {
  if (random.length < 8) throw new Error("activation code needs 8 random bytes")
  let bits = 0n
  for (let i = 0; i < 8; i++) bits = (bits << 8n) | BigInt(random[i]!)
  bits >>= 4n
  let symbols = ""
  for (let i = CODE_SYMBOLS - 1; i >= 0; i--) symbols += CROCKFORD_ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)]
  return `${symbols.slice(0, 4)}-${symbols.slice(4, 8)}-${symbols.slice(8, 12)}`
}

/** The canonical 12-symbol form of what a person typed, or undefined when it cannot be a code. */
export const normalizeActivationCode = (typed: string): string | undefined => {
  const cleaned = typed
    .toUpperCase()
    .replace(/[\s-]/g, "")
    .replace(/[IL]/g, "1")
    .replace(/O/g, "0")
  if (cleaned.length !== CODE_SYMBOLS) return undefined
  for (const c of cleaned) if (!CROCKFORD_ALPHABET.includes(c)) return undefined
  return cleaned
}
