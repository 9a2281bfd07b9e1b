/**
 * The safety code both parties read aloud: 25 decimal digits in five groups, each group taken from 5 bytes
 * (40 bits, reduced mod 100000, as Signal's safety numbers do), about 83 bits in all. It comes out of the call's key
 * schedule, which hashes the whole transcript (both identities, both ephemerals, both nonces, the suite), so any
 * substituted key gives the two sides different codes.
 */
export const SAFETY_CODE_BYTES = 25

export const formatSafetyCode = (bytes: Uint8Array): string => {
  if (bytes.length !== SAFETY_CODE_BYTES) throw new RangeError(`a safety code is made of ${SAFETY_CODE_BYTES} bytes`)
  const groups: Array<string> = []
  for (let g = 0; g < 5; g++) {
    let value = 0
    for (let i = 0; i < 5; i++) value = value * 256 + bytes[g * 5 + i]!
    groups.push(String(value % 100000).padStart(5, "0"))
  }
  return groups.join(" ")
}
