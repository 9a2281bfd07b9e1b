/**
 * Where the public known-answer files are: TESSERA_TEST_VECTORS, or the repository's own copy in
 * test/vectors/public. `sharedVectorDir` is where the originals sit beside the repository, when they do (CI clones
 * the repo to another folder with shared/ next to it, so this resolves from the repo root, not /work).
 */
import { readFileSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import type { WycheproofTexts } from "./wycheproof-suites.js"

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

export const vectorDir = process.env["TESSERA_TEST_VECTORS"] ?? path.resolve(repoRoot, "test/vectors/public")

export const sharedVectorDir = path.resolve(repoRoot, "../shared/test-vectors")

export const SHARED_SFRAME_FILE = path.join(vectorDir, "sframe-rfc9605.json")

/** tessera's own vectors for SFrame suites 0x0006-0x0008, made by an independent Python reference (see its script). */
export const AES256_CTR_HMAC_SFRAME_FILE = path.join(repoRoot, "test/crypto/vectors/sframe-aes256-ctr-hmac-sha512.json")

export const readVectorText = (file: string): string => readFileSync(file, "utf8")

export const wycheproofTexts = (): WycheproofTexts => ({
  aesGcm: readVectorText(path.join(vectorDir, "wycheproof-aes_gcm_test.json")),
  hkdf: readVectorText(path.join(vectorDir, "wycheproof-hkdf_sha256_test.json")),
  hmac: readVectorText(path.join(vectorDir, "wycheproof-hmac_sha256_test.json")),
  rsaPss: readVectorText(path.join(vectorDir, "wycheproof-rsa_pss_4096_sha256_mgf1_32_test.json"))
})
