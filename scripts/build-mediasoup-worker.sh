#!/usr/bin/env bash
# Build (once per machine) the mediasoup 3.19.3 worker from the npm tarball against Debian packages.
#
#   MEDIASOUP_WORKER_BIN=$(bash scripts/build-mediasoup-worker.sh | tail -1)
#
# mediasoup's own postinstall downloads a prebuilt worker and build tools from outside the package registries,
# which is impossible here; see scripts/mediasoup/patch-worker.py for what is changed in the sources and why.
# The stripped binary is cached at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tessera/mediasoup-worker-3.19.3-<hash of scripts/mediasoup/*.py>/mediasoup-worker
# and a second run only checks it and prints its path. Progress goes to stderr; the last stdout line is the
# absolute path of the binary. Environment: MEDIASOUP_BUILD_JOBS (ninja -j, default: number of cores).
set -euo pipefail
# Byte-order globbing (the cache key hashes the patch scripts in name order, as src/media/WorkerBinary.ts does) and
# untranslated apt messages (matched below).
export LC_ALL=C

readonly MEDIASOUP_VERSION=3.19.3
readonly MEDIASOUP_INTEGRITY='sha512-1BH68i/q/hVAuSQHFCMq6TJDwca74KMtxE7k79BGD+wrnkvi3PTpaNaVjJ/JLjpCZnBZ3WrtI3Js0nw7NHSAXw=='
readonly BUILD_PACKAGES=(build-essential pkg-config meson ninja-build flatbuffers-compiler libflatbuffers-dev libssl-dev
  libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev python3)
readonly RUNTIME_PACKAGES=(libssl3 libuv1 libsrtp2-1 libusrsctp2 libabsl20220623)

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patch_dir="$script_dir/mediasoup"

log() { printf '[mediasoup-worker] %s\n' "$*" >&2; }
die() { printf '[mediasoup-worker] ERROR: %s\n' "$*" >&2; exit 1; }

shopt -s nullglob
patch_scripts=("$patch_dir"/*.py)
shopt -u nullglob
[ "${#patch_scripts[@]}" -gt 0 ] || die "no patch scripts found in $patch_dir"
patch_hash=$(cat "${patch_scripts[@]}" | sha256sum | cut -c1-16)

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/tessera"
cache_dir="$cache_root/mediasoup-worker-$MEDIASOUP_VERSION-$patch_hash"
worker_bin="$cache_dir/mediasoup-worker"

# The worker refuses to run without MEDIASOUP_VERSION and exits with code 41: reaching that exit proves the binary
# loads and all its shared libraries resolve, without starting anything.
worker_runs() {
  local rc=0
  env -u MEDIASOUP_VERSION "$1" >/dev/null 2>&1 </dev/null || rc=$?
  [ "$rc" -eq 41 ]
}

# shellcheck source=scripts/lib/debian-packages.sh
source "$script_dir/lib/debian-packages.sh"

build_log=$(mktemp -t tessera-mediasoup-worker-build.XXXXXX.log)
APT_LOG=$build_log
work_dir=""
cleanup() {
  local rc=$?
  if [ -n "$work_dir" ]; then rm -rf "$work_dir"; fi
  if [ "$rc" -eq 0 ]; then
    rm -f "$build_log"
  elif [ -s "$build_log" ]; then
    printf '[mediasoup-worker] last lines of the build log (%s):\n' "$build_log" >&2
    tail -n 40 "$build_log" >&2
    printf '[mediasoup-worker] FAILED: the mediasoup worker was not built; full log: %s\n' "$build_log" >&2
  fi
}
trap cleanup EXIT

ensure_packages "${RUNTIME_PACKAGES[@]}"

mkdir -p "$cache_root"
# One build per machine at a time; whoever waits here finds the other's result in the cache.
exec 9>"$cache_root/.mediasoup-worker.lock"
flock 9

if [ -x "$worker_bin" ]; then
  if worker_runs "$worker_bin"; then
    log "cached worker: $worker_bin"
    printf '%s\n' "$worker_bin"
    exit 0
  fi
  log "cached worker at $worker_bin does not run; rebuilding"
  rm -f "$worker_bin"
fi

ensure_packages "${BUILD_PACKAGES[@]}"

run_step() {
  local what=$1
  shift
  log "$what"
  printf '\n==> %s\n' "$what" >>"$build_log"
  "$@" >>"$build_log" 2>&1 || die "$what failed"
}

started=$(date +%s)
work_dir=$(mktemp -d -t tessera-mediasoup-worker.XXXXXX)
log "building mediasoup-worker $MEDIASOUP_VERSION (patch hash $patch_hash; log: $build_log)"

run_step "npm pack mediasoup@$MEDIASOUP_VERSION" \
  sh -c 'cd "$1" && npm pack --json "mediasoup@$2" > pack.json' sh "$work_dir" "$MEDIASOUP_VERSION"
tarball="$work_dir/mediasoup-$MEDIASOUP_VERSION.tgz"
[ -f "$tarball" ] || die "npm pack did not produce $tarball"
integrity="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$integrity" = "$MEDIASOUP_INTEGRITY" ] || die "integrity of $tarball is $integrity, expected $MEDIASOUP_INTEGRITY"

run_step "unpacking" tar -xzf "$tarball" -C "$work_dir"
source_dir="$work_dir/package/worker"
build_dir="$work_dir/build"

for patch in "${patch_scripts[@]}"; do
  run_step "applying $(basename "$patch")" /usr/bin/python3 "$patch" "$source_dir"
done

run_step "meson setup" meson setup "$build_dir" "$source_dir" \
  --buildtype=release -Db_ndebug=true -Dms_disable_liburing=true --wrap-mode=nodownload
jobs="${MEDIASOUP_BUILD_JOBS:-$(nproc)}"
run_step "generating flatbuffers headers (fbs/FBS)" ninja -C "$build_dir" fbs/FBS
run_step "compiling mediasoup-worker with $jobs jobs (several minutes)" ninja -C "$build_dir" -j "$jobs" mediasoup-worker
run_step "stripping" strip "$build_dir/mediasoup-worker"
worker_runs "$build_dir/mediasoup-worker" || die "the freshly built worker does not start (shared libraries?)"

mkdir -p "$cache_dir"
cp "$build_dir/mediasoup-worker" "$worker_bin.tmp.$$"
chmod 0755 "$worker_bin.tmp.$$"
mv -f "$worker_bin.tmp.$$" "$worker_bin"

log "built in $(($(date +%s) - started)) s, $(stat -c %s "$worker_bin") bytes: $worker_bin"
printf '%s\n' "$worker_bin"
