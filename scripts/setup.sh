#!/usr/bin/env bash
# Sets up tessera on a Debian 12 machine with Node 20 and, unless told otherwise, starts the server.
#
#   bash scripts/setup.sh              install what is missing, then run the server in the foreground (npm start)
#   bash scripts/setup.sh --no-start   install what is missing, then stop
#   bash scripts/setup.sh --ci         as --no-start, and start the local PostgreSQL cluster the tests use if it is down
#
# Steps, each skipped when already done, so a second run takes seconds:
#   1. Debian packages: postgresql's binaries when none are installed (the tests start a private cluster when no
#      local one takes them), chromium (the browser tests drive /usr/bin/chromium) and openssl (tests and the worker build
#      call the CLI); the mediasoup worker build installs its own packages.
#   2. The mediasoup worker, built once per machine by scripts/build-mediasoup-worker.sh (~8 min the first time) and
#      cached outside the repository; MEDIASOUP_WORKER_BIN, when set, names an existing binary instead.
#   3. npm ci, when node_modules is missing or older than package-lock.json, with MEDIASOUP_WORKER_BIN exported so
#      that mediasoup's postinstall does not try to download a worker.
# The server needs no PostgreSQL: without DATABASE_URL it uses the embedded database in ./data (TESSERA_DATA_DIR).
# Progress goes to stderr as "[setup] ..." lines.
set -euo pipefail
export LC_ALL=C

readonly DEBIAN_PACKAGES=(chromium openssl)
readonly NODE_MIN_MAJOR=20 NODE_MIN_MINOR=11

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

mode=start
for arg in "$@"; do
  case "$arg" in
    --ci) mode=ci ;;
    --no-start) mode=no-start ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; printf '[setup] ERROR: unknown option %s\n' "$arg" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_dir"
started=$(date +%s)

# --- Node -------------------------------------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "Node.js >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR is required (not found)"
command -v npm >/dev/null 2>&1 || die "npm is required (not found)"
node_version=$(node -p 'process.versions.node')
IFS=. read -r node_major node_minor _ <<<"$node_version"
if [ "$node_major" -lt "$NODE_MIN_MAJOR" ] || { [ "$node_major" -eq "$NODE_MIN_MAJOR" ] && [ "$node_minor" -lt "$NODE_MIN_MINOR" ]; }; then
  die "Node.js >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR is required, found $node_version"
fi

# --- Debian packages ---------------------------------------------------------------------------------------------
# shellcheck source=scripts/lib/debian-packages.sh
source "$repo_dir/scripts/lib/debian-packages.sh"

ensure_packages "${DEBIAN_PACKAGES[@]}"

# The tests run against a real PostgreSQL: the local one when it takes user postgres with trust auth, otherwise a
# private throw-away cluster that test/support/postgres-global.ts starts from the installed binaries. Install them
# when there are none (the server itself needs no PostgreSQL).
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  ensure_packages postgresql
fi

# --- mediasoup worker -------------------------------------------------------------------------------------------
if [ -n "${MEDIASOUP_WORKER_BIN:-}" ]; then
  if [ ! -f "$MEDIASOUP_WORKER_BIN" ] || [ ! -x "$MEDIASOUP_WORKER_BIN" ]; then
    die "MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN is not an executable file (unset it to build the worker here)"
  fi
  log "mediasoup worker from MEDIASOUP_WORKER_BIN: $MEDIASOUP_WORKER_BIN"
else
  log "mediasoup worker: checking the machine's cache (a build, or waiting for one in progress, takes ~8 min)"
  MEDIASOUP_WORKER_BIN=$(bash scripts/build-mediasoup-worker.sh | tail -n 1)
  [ -x "$MEDIASOUP_WORKER_BIN" ] || die "the mediasoup worker build did not produce a binary"
fi
export MEDIASOUP_WORKER_BIN

# --- npm dependencies -------------------------------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2 || die "npm ci failed"
else
  log "node_modules is up to date with package-lock.json"
fi

# --- PostgreSQL for the tests (CI only): a local cluster that is merely down is started; without one, the tests ---
# --- start their own (see above) ---------------------------------------------------------------------------------
if [ "$mode" = ci ]; then
  if command -v pg_lsclusters >/dev/null 2>&1; then
    # Columns: version, cluster, port, status, owner, data directory, log file. Only the default cluster ("main",
    # port 5432 unless configured otherwise) is the tests'; other clusters are left alone.
    while read -r version cluster _port status _; do
      if [ "$cluster" = main ] && [ "$status" = down ]; then
        log "starting PostgreSQL cluster $version/$cluster"
        "${sudo_cmd[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start ||
          die "could not start PostgreSQL cluster $version/$cluster"
      fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
  fi
fi

log "ready in $(($(date +%s) - started)) s (mediasoup worker: $MEDIASOUP_WORKER_BIN)"

# --- start ------------------------------------------------------------------------------------------------------
[ "$mode" = start ] || exit 0
if [ -n "${DATABASE_URL:-}" ]; then
  log "starting the server (database from DATABASE_URL); stop it with Ctrl-C"
else
  log "starting the server on the embedded database in ${TESSERA_DATA_DIR:-./data}; stop it with Ctrl-C"
fi
# bash as the script shell execs the start command in place of itself; npm's default sh (dash) stays in between and
# dies on a SIGTERM sent to npm without passing it on, leaving the server running with the data directory held.
exec npm --script-shell=bash start
