"""Reference vectors for tessera's SFrame suites 0x0006-0x0008 (AES-256-CTR + HMAC-SHA-512, RFC 9605 section 4.5.1
construction). Written independently of the TypeScript code, from the RFC text, on top of pyca/cryptography; it
first reproduces the RFC's own vectors for 0x0001-0x0005 to show the construction is right, then prints
sframe-aes256-ctr-hmac-sha512.json to stdout.

    python3 test/crypto/vectors/make-sframe-aes256-ctr-hmac-sha512.py SHARED_RFC9605_JSON > OUT.json
"""
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SUITES = {
    1: ("ctr", hashlib.sha256, 16, 10), 2: ("ctr", hashlib.sha256, 16, 8), 3: ("ctr", hashlib.sha256, 16, 4),
    4: ("gcm", hashlib.sha256, 16, 16), 5: ("gcm", hashlib.sha512, 32, 16),
    6: ("ctr", hashlib.sha512, 32, 10), 7: ("ctr", hashlib.sha512, 32, 8), 8: ("ctr", hashlib.sha512, 32, 4),
}


def nk(suite):
    kind, h, nka, _ = SUITES[suite]
    return nka + h().digest_size if kind == "ctr" else nka


def hkdf_extract(h, salt, ikm):
    return hmac.new(salt or b"\0" * h().digest_size, ikm, h).digest()


def hkdf_expand(h, prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:length]


def header(kid, ctr):
    def part(v):
        if v < 8:
            return v, b""
        n = (v.bit_length() + 7) // 8
        return (1 << 3) | (n - 1), v.to_bytes(n, "big")
    k, kb = part(kid)
    c, cb = part(ctr)
    return bytes([(k << 4) | c]) + kb + cb


def ctr_hmac_seal(suite, key, nonce, aad, pt):
    _, h, nka, nt = SUITES[suite]
    enc = Cipher(algorithms.AES(key[:nka]), modes.CTR(nonce + b"\0" * 4)).encryptor()
    ct = enc.update(pt) + enc.finalize()
    auth = len(aad).to_bytes(8, "big") + len(ct).to_bytes(8, "big") + nt.to_bytes(8, "big") + nonce + aad + ct
    return ct + hmac.new(key[nka:], auth, h).digest()[:nt]


def seal(suite, key, nonce, aad, pt):
    if SUITES[suite][0] == "gcm":
        return AESGCM(key).encrypt(nonce, pt, aad)
    return ctr_hmac_seal(suite, key, nonce, aad, pt)


def sframe_vector(suite, kid, ctr, base_key, metadata, pt):
    h = SUITES[suite][1]
    secret = hkdf_extract(h, b"", base_key)
    tail = kid.to_bytes(8, "big") + suite.to_bytes(2, "big")
    key_label = b"SFrame 1.0 Secret key " + tail
    salt_label = b"SFrame 1.0 Secret salt " + tail
    key = hkdf_expand(h, secret, key_label, nk(suite))
    salt = hkdf_expand(h, secret, salt_label, 12)
    nonce = (int.from_bytes(salt, "big") ^ ctr).to_bytes(12, "big")
    hdr = header(kid, ctr)
    aad = hdr + metadata
    return {
        "cipher_suite": suite, "kid": kid, "ctr": ctr, "base_key": base_key.hex(),
        "sframe_key_label": key_label.hex(), "sframe_salt_label": salt_label.hex(),
        "sframe_secret": secret.hex(), "sframe_key": key.hex(), "sframe_salt": salt.hex(),
        "metadata": metadata.hex(), "nonce": nonce.hex(), "aad": aad.hex(), "pt": pt.hex(),
        "ct": (hdr + seal(suite, key, nonce, aad, pt)).hex(),
    }


def main():
    rfc = json.load(open(sys.argv[1]))
    for v in rfc["aes_ctr_hmac"]:
        got = ctr_hmac_seal(v["cipher_suite"], bytes.fromhex(v["key"]), bytes.fromhex(v["nonce"]),
                            bytes.fromhex(v["aad"]), bytes.fromhex(v["pt"]))
        assert got.hex() == v["ct"], v["cipher_suite"]
    for v in rfc["sframe"]:
        got = sframe_vector(v["cipher_suite"], v["kid"], v["ctr"], bytes.fromhex(v["base_key"]),
                            bytes.fromhex(v["metadata"]), bytes.fromhex(v["pt"]))
        assert got == v, v["cipher_suite"]
    metadata = b"IETF SFrame WG"
    pt = b"draft-ietf-sframe-enc"
    out = {"header": [], "aes_ctr_hmac": [], "sframe": []}
    for suite in (6, 7, 8):
        key = bytes(range(96))
        nonce = bytes(range(0x10, 0x1c))
        out["aes_ctr_hmac"].append({
            "cipher_suite": suite, "key": key.hex(), "enc_key": key[:32].hex(), "auth_key": key[32:].hex(),
            "nonce": nonce.hex(), "aad": metadata.hex(), "pt": pt.hex(),
            "ct": ctr_hmac_seal(suite, key, nonce, metadata, pt).hex(),
        })
        for kid, ctr, base_key in ((0x123, 0x4567, bytes(range(16))), (0, 0, bytes(range(32))),
                                   (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, bytes(range(64)))):
            out["sframe"].append(sframe_vector(suite, kid, ctr, base_key, metadata, pt))
        # A multi-block frame (AES-CTR counter runs over several blocks) with no metadata.
        out["sframe"].append(sframe_vector(suite, 7, 8, bytes(range(32)), b"", bytes(i % 251 for i in range(1000))))
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


main()
