#!/usr/bin/env bash
# Runs berth locally on a fresh Debian 12 machine (as root, or with sudo): Node 24 project-locally
# when the system's is older (scripts/node-runtime.sh),
# installs and starts what is missing (npm deps, the Docker engine), builds the worker image,
# starts Redis when REDIS_URL is unset (a redis-server child with AOF on, data in ./data/redis),
# then starts the dispatcher (API + consumer) and prints how to submit a demo task.
# Any berth setting can be given in the environment (see docs/configuration.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
data="$(pwd)/data"
mkdir -p "$data"

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then need+=(redis-server); fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "up: installing ${need[*]} from Debian's packages" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" iptables >/dev/null
fi
scripts/start-docker.sh
source scripts/node-runtime.sh
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
export WORKER_IMAGE="${WORKER_IMAGE:-berth:local}"
scripts/build-image.sh "$WORKER_IMAGE" >/dev/null

if [ -z "${REDIS_URL:-}" ]; then
  port="${BERTH_REDIS_PORT:-6390}"
  mkdir -p "$data/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$data/redis" --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --save '' --logfile "$data/redis/redis.log" &
  redis_pid=$!
  trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
  export REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

if [ -z "${API_TOKEN:-}" ]; then
  [ -s "$data/api-token" ] || (umask 077 && node -e "console.log(require('crypto').randomBytes(24).toString('hex'))" >"$data/api-token")
  API_TOKEN="$(cat "$data/api-token")"
  export API_TOKEN
fi
if ! env | grep -q '^AGENT_COMMAND_'; then export AGENT_COMMAND_DEMO="node /app/dist/worker/demo-agent.js"; fi
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-3000}"

cat <<INFO

  berth is starting
  API:    http://$HOST:$PORT   (health: /healthz, readiness: /readyz)
  Token:  $API_TOKEN
  Redis:  $REDIS_URL
  Try:    curl -s -X POST http://$HOST:$PORT/api/tasks -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' -d '{"kind":"demo","repo":"octo/hello","prompt":"10"}'
  Then:   curl -s http://$HOST:$PORT/api/tasks/<id> -H "Authorization: Bearer $API_TOKEN"

INFO
# The same V8 flags as the image's entrypoint (Dockerfile).
flags="$(sed -n 's/^ENTRYPOINT \["node", *\(.*\)\]$/\1/p' Dockerfile | tr -d '",')"
# shellcheck disable=SC2086
node $flags dist/api/main.js
