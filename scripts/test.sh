#!/usr/bin/env bash
# Runs every test, on a fresh Debian 12 machine (as root, or with sudo): brings Node 24 in
# project-locally when the system's is older (scripts/node-runtime.sh),
# installs Redis and the Docker engine from Debian's packages if missing, starts dockerd if it is
# not running, installs npm dependencies, then runs the whole suite (unit and end to end).
# Arguments are passed on as test files, e.g. scripts/test.sh test/unit/config.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
# Debian's docker-compose (v1) runs compose.yaml in the deployment test.
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# Debian's chromium for the board's browser test (playwright-core drives it; no browser download).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The base image made here when no registry is reachable (a real Debian, with git).
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# Prometheus and promtool for the observability pack's tests; openssl for the TLS engine test.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v git >/dev/null 2>&1 || need+=(git)
if [ "${#need[@]}" -gt 0 ]; then
  echo "test: installing ${need[*]} from Debian's packages" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" iptables >/dev/null
fi
scripts/start-docker.sh
source scripts/node-runtime.sh
npm ci --no-audit --no-fund --loglevel=error
echo "test: type-checking" >&2
npx tsc -p tsconfig.json --noEmit
echo "test: formatting and lint (biome)" >&2
npx biome check .
exec node scripts/run-tests.mjs "$@"
