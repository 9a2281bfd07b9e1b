/**
 * Which Wycheproof AES-GCM cases each engine is expected to refuse, stated as parameter rules so a test fails both
 * when an engine refuses anything else and when it suddenly accepts these (and then must get them right).
 */
interface AesGcmGroup {
  readonly keySize: number
  readonly ivSize: number
  readonly tests: ReadonlyArray<{ readonly tcId: number; readonly result: string }>
}

export type AesGcmRule = (group: { readonly keySize: number; readonly ivSize: number }) => boolean

/** Node 20 (OpenSSL 3): IVs shorter than 96 bits or longer than 2048 bits. */
export const NODE_UNSUPPORTED_AES_GCM: AesGcmRule = (g) => g.ivSize < 96 || g.ivSize > 2048

/** Chromium (BoringSSL): no AES-192 keys at all; every IV size works. */
export const CHROMIUM_UNSUPPORTED_AES_GCM: AesGcmRule = (g) => g.keySize === 192

/** The valid cases a rule covers, labelled like SuiteReport.unsupported. */
export const expectedUnsupportedAesGcm = (text: string, rule: AesGcmRule): ReadonlyArray<string> =>
  (JSON.parse(text) as { readonly testGroups: ReadonlyArray<AesGcmGroup> }).testGroups.flatMap((g) =>
    rule(g) ? g.tests.filter((t) => t.result === "valid").map((t) => `${t.tcId}:${g.keySize}/${g.ivSize}`) : []
  )
