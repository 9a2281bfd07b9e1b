/**
 * Node key store: one JSON file (mode 0600, written atomically) with the config, the PKCS#8 private key, the SPKI
 * public key and, on host devices, the profile key. Removed by `clear`.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import { dirname } from "node:path"
import { fromBase64Url, toBase64Url } from "../crypto/bytes.js"
import { exportIdentityPrivateKey, importIdentityKeyPair } from "../crypto/identity.js"
import { decodeConfig, type DeviceCredentials, encodeConfig, type KeyStore } from "./KeyStore.js"

interface StoredFile {
  readonly version: 1
  readonly config: unknown
  readonly privateKey: string
  readonly publicKey: string
  readonly profileKey?: string
}

export const fileKeyStore = (path: string): KeyStore => ({
  load: async () => {
    let text: string
    try {
      text = await readFile(path, "utf8")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
      throw error
    }
    const stored = JSON.parse(text) as StoredFile
    const keys = await importIdentityKeyPair(fromBase64Url(stored.privateKey), fromBase64Url(stored.publicKey), {
      extractable: true
    })
    return {
      config: decodeConfig(stored.config),
      keys,
      ...(stored.profileKey === undefined ? {} : { profileKey: fromBase64Url(stored.profileKey) })
    } satisfies DeviceCredentials
  },
  save: async (credentials) => {
    const stored: StoredFile = {
      version: 1,
      config: encodeConfig(credentials.config),
      privateKey: toBase64Url(await exportIdentityPrivateKey(credentials.keys)),
      publicKey: toBase64Url(credentials.keys.publicKeySpki),
      ...(credentials.profileKey === undefined ? {} : { profileKey: toBase64Url(credentials.profileKey) })
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    const temporary = `${path}.${process.pid}.tmp`
    await writeFile(temporary, JSON.stringify(stored), { mode: 0o600 })
    await chmod(temporary, 0o600)
    await rename(temporary, path)
  },
  clear: () => rm(path, { force: true })
})
