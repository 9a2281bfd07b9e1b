#!/usr/bin/env python3
"""Patch the mediasoup 3.19.3 worker sources so they build offline against Debian 12 packages.

Usage: patch-worker.py WORKER_DIR   (the `worker/` folder of the unpacked npm tarball)

Every edit names the exact text it expects; if that text is missing (another mediasoup version, or the
sources were already patched) the script stops with an error instead of skipping the edit. The build
script hashes this file into the cache key, so any change here produces a new binary.
"""

import pathlib
import shutil
import sys


class PatchError(Exception):
    pass


def read(path: pathlib.Path) -> str:
    if not path.is_file():
        raise PatchError(f"{path}: file not found")
    return path.read_text(encoding="utf-8")


def replace_once(path: pathlib.Path, old: str, new: str) -> None:
    text = read(path)
    count = text.count(old)
    if count != 1:
        raise PatchError(f"{path}: expected exactly 1 occurrence of {old!r}, found {count}")
    path.write_text(text.replace(old, new), encoding="utf-8")


def replace_between(path: pathlib.Path, start: str, end: str, new: str, must_contain: list[str]) -> None:
    """Replace the text from `start` (inclusive) up to `end` (exclusive) by `new`."""
    text = read(path)
    if text.count(start) != 1:
        raise PatchError(f"{path}: expected exactly 1 occurrence of start marker {start!r}")
    i = text.index(start)
    j = text.find(end, i)
    if j < 0:
        raise PatchError(f"{path}: end marker {end!r} not found after {start!r}")
    region = text[i:j]
    for needle in must_contain:
        if needle not in region:
            raise PatchError(f"{path}: region {start!r}..{end!r} lacks expected {needle!r}")
    path.write_text(text[:i] + new + text[j:], encoding="utf-8")


def truncate_from(path: pathlib.Path, start: str, must_contain: list[str]) -> None:
    text = read(path)
    if text.count(start) != 1:
        raise PatchError(f"{path}: expected exactly 1 occurrence of {start!r}")
    i = text.index(start)
    for needle in must_contain:
        if needle not in text[i:]:
            raise PatchError(f"{path}: tail from {start!r} lacks expected {needle!r}")
    path.write_text(text[:i], encoding="utf-8")


SYSTEM_DEPENDENCIES = """openssl_dep = dependency('openssl', version: '>= 3.0')
libuv_dep = dependency('libuv')
libsrtp2_dep = dependency('libsrtp2')
usrsctp_dep = dependency('usrsctp')
flatbuffers_dep = dependency('flatbuffers')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
absl_container_deps = [
  dependency('absl_flat_hash_map'),
  dependency('absl_flat_hash_set'),
  dependency('absl_btree'),
  dependency('absl_inlined_vector'),
]

"""

WORKER_DEPENDENCIES = """dependencies = absl_container_deps + [
  openssl_dep,
  libuv_dep,
  libsrtp2_dep,
  usrsctp_dep,
  flatbuffers_dep,
  flatbuffers_generator_dep,
  libwebrtc_dep,
]

link_whole = []

"""


def patch_meson(worker: pathlib.Path) -> None:
    meson = worker / "meson.build"
    # Debian 12 ships meson 1.0.1; nothing in these files needs more than 0.63.
    replace_once(meson, "meson_version: '>= 1.1.0',", "meson_version: '>= 0.63.0',")
    replace_between(
        meson,
        "openssl_proj = subproject(",
        "# flatbuffers schemas subdirectory.",
        SYSTEM_DEPENDENCIES,
        ["'openssl'", "'libuv'", "'libsrtp3'", "'usrsctp'", "'abseil-cpp'", "'catch2'", "'flatbuffers'"],
    )
    replace_between(
        meson,
        "dependencies = [\n  abseil_cpp_proj.get_variable('absl_container_dep'),",
        "if host_machine.system() == 'windows'",
        WORKER_DEPENDENCIES,
        ["libsrtp3_proj.get_variable('libsrtp3')", "link_whole = ["],
    )
    replace_between(
        meson,
        "libmediasoup_worker = library(",
        "executable(\n  'mediasoup-worker',",
        "",
        ["install_tag: 'libmediasoup-worker',"],
    )
    truncate_from(
        meson,
        "test_sources = [",
        ["mediasoup_worker_test = executable(", "'mediasoup-worker-fuzzer'", "catch2_proj"],
    )

    webrtc = worker / "deps" / "libwebrtc" / "meson.build"
    replace_between(
        webrtc,
        "abseil_cpp_proj = subproject(",
        "local_include_directories = declare_dependency(",
        "",
        ["'abseil-cpp'"],
    )
    replace_once(
        webrtc,
        """    openssl_proj.get_variable('openssl_dep'),
    abseil_cpp_proj.get_variable('absl_strings_dep'),
    abseil_cpp_proj.get_variable('absl_types_dep'),
    flatbuffers_proj.get_variable('flatbuffers_dep'),
    libuv_proj.get_variable('libuv_dep'),
""",
        """    openssl_dep,
    absl_strings_dep,
    absl_types_dep,
    flatbuffers_dep,
    libuv_dep,
""",
    )
    replace_once(
        webrtc,
        """    local_include_directories,
    abseil_cpp_proj.get_variable('absl_strings_dep'),
    abseil_cpp_proj.get_variable('absl_types_dep'),
  ],""",
        """    local_include_directories,
    absl_strings_dep,
    absl_types_dep,
  ],""",
    )


def patch_libsrtp2(worker: pathlib.Path) -> None:
    """3.19.3 targets versatica's libsrtp 3 fork; Debian has libsrtp2 2.5 (in-place, int* lengths)."""
    replace_once(worker / "include" / "DepLibSRTP.hpp", "#include <srtp.h>", "#include <srtp2/srtp.h>")
    session_hpp = worker / "include" / "RTC" / "SrtpSession.hpp"
    replace_once(session_hpp, "#include <srtp.h>", "#include <srtp2/srtp.h>")
    replace_once(
        session_hpp,
        "srtp_stream_remove(this->session, uint32_t{ htonl(ssrc) });",
        "srtp_remove_stream(this->session, uint32_t{ htonl(ssrc) });",
    )
    replace_once(
        worker / "src" / "DepLibSRTP.cpp",
        """	{ srtp_err_status_pkt_idx_adv,   "packet index advanced, reset needed" },
	{ srtp_err_status_buffer_small,  "out buffer is too small" },
	{ srtp_err_status_cryptex_err,   "unsupported cryptex operation" }
""",
        """	{ srtp_err_status_pkt_idx_adv,   "packet index advanced, reset needed" }
""",
    )

    session = worker / "src" / "RTC" / "SrtpSession.cpp"
    replace_once(session, "#include <cstring> // std::memset()", "#include <cstring> // std::memset(), std::memcpy()")
    # RTP protect: copy into the encrypt buffer, then protect in place.
    replace_once(
        session,
        """		const srtp_err_status_t err = srtp_protect(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* rtp*/ *data,
		  /*size_t rtp_len*/ *len,
		  /*uint8_t* srtp*/ encryptBuffer,
		  /*size_t* srtp_len*/ std::addressof(encryptLen),
		  /*size_t mki_index*/ 0);
""",
        """		if (*len + SRTP_MAX_TRAILER_LEN > encryptLen)
		{
			MS_WARN_TAG(srtp, "cannot encrypt RTP packet, size too big (%zu bytes)", *len);

			return false;
		}

		std::memcpy(encryptBuffer, *data, *len);

		int protectLen = static_cast<int>(*len);

		const srtp_err_status_t err = srtp_protect(this->session, encryptBuffer, std::addressof(protectLen));

		encryptLen = static_cast<size_t>(protectLen);
""",
    )
    replace_once(
        session,
        """		const srtp_err_status_t err = srtp_unprotect(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* srtp*/ data,
		  /*size_t srtp_len*/ *len,
		  /*uint8_t* rtp*/ data,
		  /*size_t* rtp_len*/ std::addressof(decryptLen));
""",
        """		int unprotectLen = static_cast<int>(decryptLen);

		const srtp_err_status_t err = srtp_unprotect(this->session, data, std::addressof(unprotectLen));

		decryptLen = static_cast<size_t>(unprotectLen);
""",
    )
    # libsrtp2 may write SRTP_MAX_TRAILER_LEN + 4 bytes past an RTCP packet.
    replace_once(
        session,
        "		if (*len + SRTP_MAX_TRAILER_LEN > EncryptBufferSize)\n		{\n			MS_WARN_TAG(srtp, \"cannot encrypt RTCP",
        "		if (*len + SRTP_MAX_TRAILER_LEN + 4 > EncryptBufferSize)\n		{\n			MS_WARN_TAG(srtp, \"cannot encrypt RTCP",
    )
    replace_once(
        session,
        """		const srtp_err_status_t err = srtp_protect_rtcp(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* rtcp*/ *data,
		  /*size_t rtcp_len*/ *len,
		  /*uint8_t* srtcp*/ encryptBuffer,
		  /*size_t* srtcp_len*/ std::addressof(encryptLen),
		  /*size_t mki_index*/ 0);
""",
        """		std::memcpy(encryptBuffer, *data, *len);

		int protectLen = static_cast<int>(*len);

		const srtp_err_status_t err =
		  srtp_protect_rtcp(this->session, encryptBuffer, std::addressof(protectLen));

		encryptLen = static_cast<size_t>(protectLen);
""",
    )
    replace_once(
        session,
        """		const srtp_err_status_t err = srtp_unprotect_rtcp(
		  /*srtp_t ctx*/ this->session,
		  /*const uint8_t* srtcp*/ data,
		  /*size_t srtcp_len*/ *len,
		  /*uint8_t* rtcp*/ data,
		  /*size_t* rtcp_len*/ std::addressof(decryptLen));
""",
        """		int unprotectLen = static_cast<int>(decryptLen);

		const srtp_err_status_t err =
		  srtp_unprotect_rtcp(this->session, data, std::addressof(unprotectLen));

		decryptLen = static_cast<size_t>(unprotectLen);
""",
    )


def patch_dtls_bio_callback(worker: pathlib.Path) -> None:
    """OpenSSL passes BIO_CB_RETURN combined with the operation bits (e.g. BIO_CB_CTRL | BIO_CB_RETURN, used a
    lot by a kernel-TLS enabled OpenSSL such as Debian's). Comparing with == returns 1 instead of the real result
    for those calls, and the worker crashes once DTLS starts."""
    replace_once(
        worker / "src" / "RTC" / "DtlsTransport.cpp",
        "long resultOfcallback = (operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1;",
        "long resultOfcallback = ((operationType & BIO_CB_RETURN) != 0) ? static_cast<long>(ret) : 1;",
    )


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: patch-worker.py WORKER_DIR", file=sys.stderr)
        return 2
    worker = pathlib.Path(sys.argv[1])
    try:
        # The wraps would download sources; the build uses Debian's libraries instead.
        subprojects = worker / "subprojects"
        if not subprojects.is_dir():
            raise PatchError(f"{subprojects}: not found (is this the worker folder of mediasoup 3.19.3?)")
        shutil.rmtree(subprojects)
        patch_meson(worker)
        patch_libsrtp2(worker)
        patch_dtls_bio_callback(worker)
    except PatchError as error:
        print(f"patch-worker.py: {error}", file=sys.stderr)
        return 1
    print("patch-worker.py: all patches applied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
