# Installing Debian packages from setup.sh and build-mediasoup-worker.sh: only what is missing, `apt-get update`
# only when a package has no candidate (or an install fails on stale lists), waiting for another process's
# dpkg/apt lock, sudo when not root. Source it after defining `log` and `die`; set APT_LOG to a file to keep
# apt's output of successful runs there.
# shellcheck shell=bash

sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); fi

missing_packages() {
  local pkg
  command -v dpkg-query >/dev/null 2>&1 || return 0
  for pkg in "$@"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != installed ]; then
      printf '%s\n' "$pkg"
    fi
  done
}

apt_with_lock_wait() {
  local attempt out rc
  for attempt in $(seq 1 120); do
    rc=0
    out=$("${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
      if [ -n "${APT_LOG:-}" ]; then printf '%s\n' "$out" >>"$APT_LOG"; fi
      return 0
    fi
    if grep -qE 'Could not get lock|Unable to acquire the dpkg|Unable to lock' <<<"$out"; then
      [ "$attempt" -eq 1 ] && log "waiting for another apt/dpkg process to release its lock"
      sleep 5
      continue
    fi
    printf '%s\n' "$out" | tail -n 30 >&2
    return "$rc"
  done
  log "gave up waiting for the apt/dpkg lock"
  return 1
}

ensure_packages() {
  local missing pkg candidate need_update=false
  mapfile -t missing < <(missing_packages "$@")
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get (this targets Debian 12)"
  if [ "$(id -u)" -ne 0 ] && [ "${#sudo_cmd[@]}" -eq 0 ]; then
    die "missing Debian packages: ${missing[*]} (run as root or install them with apt-get)"
  fi
  for pkg in "${missing[@]}"; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then need_update=true; fi
  done
  if $need_update; then
    log "apt-get update"
    apt_with_lock_wait update || die "apt-get update failed"
  fi
  log "installing Debian packages: ${missing[*]}"
  if ! apt_with_lock_wait install -y --no-install-recommends "${missing[@]}"; then
    # Package lists that are merely old point at files the mirror no longer has: refresh once and retry.
    $need_update && die "apt-get install ${missing[*]} failed"
    log "apt-get install failed; refreshing the package lists and retrying"
    apt_with_lock_wait update || die "apt-get update failed"
    apt_with_lock_wait install -y --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
  fi
}
