#!/usr/bin/env bash
# Runs berth locally on a fresh Debian 12 machine (as root, or with sudo): Node 24 project-locally
# when the system's is older (scripts/node-runtime.sh),
# installs and starts what is missing (npm deps, the Docker engine), builds the worker image,
# starts Redis when REDIS_URL is unset (a redis-server child with AOF on, data in ./data/redis),
# then starts the dispatcher (API + consumer) and prints how to submit a demo task.
# Any berth setting can be given in the environment (see docs/configuration.md).
# It writes the settings it used (secrets as file paths, never their values) to data/berth.env,
# where the `berth` CLI and `berth doctor` find them, and installs the CLI as `berth` on PATH
# (/usr/local/bin as root, else ~/.local/bin; BERTH_BIN_DIR to choose).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
data="${BERTH_DATA_DIR:-$(pwd)/data}"
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
# berth's own image is built here; an image of yours (WORKER_IMAGE, e.g. your agent's from
# docs/agents.md) is used as it is, never overwritten.
export WORKER_IMAGE="${WORKER_IMAGE:-berth:local}"
if [ "$WORKER_IMAGE" = "berth:local" ]; then
  echo "up: building berth's worker image $WORKER_IMAGE (scripts/build-image.sh)" >&2
  scripts/build-image.sh "$WORKER_IMAGE" >/dev/null
elif docker image inspect "$WORKER_IMAGE" >/dev/null 2>&1; then
  echo "up: using your worker image $WORKER_IMAGE as it is" >&2
else
  echo "up: WORKER_IMAGE=$WORKER_IMAGE is not on this Docker engine; build it first (docs/agents.md), or leave WORKER_IMAGE unset for berth's own" >&2
  exit 1
fi

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

token_file="${API_TOKEN_FILE:-}"
if [ -z "${API_TOKEN:-}" ] && [ -z "$token_file" ]; then
  token_file="$data/api-token"
  [ -s "$token_file" ] || (umask 077 && node -e "console.log(require('crypto').randomBytes(24).toString('hex'))" >"$token_file")
  export API_TOKEN_FILE="$token_file"
fi
if ! env | grep -q '^AGENT_COMMAND_'; then export AGENT_COMMAND_DEMO="node /app/dist/worker/demo-agent.js"; fi
export BERTH_HOST="${BERTH_HOST:-${HOST:-127.0.0.1}}" BERTH_PORT="${BERTH_PORT:-${PORT:-3000}}"
HOST="$BERTH_HOST" PORT="$BERTH_PORT"

# The configuration is checked before anything says berth is starting: a bad setting stops here,
# every problem named (the same check berth makes at its own start).
node --input-type=module -e "const { loadConfigOrExit } = await import('./dist/core/config.js'); loadConfigOrExit();"

# What berth runs with, for the CLI and doctor: every berth setting set now, secrets by file only.
secret='^(API_TOKEN|GITHUB_WEBHOOK_SECRET|GITHUB_WEBHOOK_SECRET_PREVIOUS|BOARD_PASSWORD|GITHUB_APP_PRIVATE_KEY|PROVIDER_[A-Z0-9_]+_KEY)='
settings="$(node --input-type=module -e "
  const { envSchema } = await import('./dist/core/config.js');
  const known = new Set(Object.keys(envSchema.shape));
  const prefixes = ['AGENT_COMMAND_', 'SETUP_COMMAND_', 'GITHUB_TOKEN_PERMISSIONS_', 'EGRESS_HOSTS_', 'TASK_BUDGET_TOKENS_', 'TASK_BUDGET_USD_', 'PROVIDER_'];
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && (known.has(k) || prefixes.some((p) => k.startsWith(p)))) console.log(k + '=' + JSON.stringify(v));
" 2>/dev/null | grep -Ev "$secret" | sort || true)"
(umask 077 && printf '# Written by scripts/up.sh: the settings berth runs with (secrets only as *_FILE paths).\nBERTH_URL="http://%s:%s"\n%s\n' "$HOST" "$PORT" "$settings" >"$data/berth.env")

# The CLI on PATH, run by this checkout's Node.
bin_dir="${BERTH_BIN_DIR:-}"
if [ -z "$bin_dir" ]; then if [ "$(id -u)" -eq 0 ]; then bin_dir=/usr/local/bin; else bin_dir="$HOME/.local/bin"; fi; fi
mkdir -p "$bin_dir"
printf '#!/bin/sh\n# berth CLI of %s (written by scripts/up.sh)\nBERTH_ENV_FILE="${BERTH_ENV_FILE:-%s}" exec "%s" "%s" "$@"\n' "$(pwd)" "$data/berth.env" "$(command -v node)" "$(pwd)/dist/cli/main.js" >"$bin_dir/berth"
chmod 755 "$bin_dir/berth"
case ":$PATH:" in *":$bin_dir:"*) on_path="" ;; *) on_path=" (add $bin_dir to PATH)" ;; esac

cat <<INFO

  berth is starting
  API:      http://$HOST:$PORT   (health: /healthz, readiness: /readyz; board: /admin/queues)
  Token:    ${API_TOKEN_FILE:-the API_TOKEN you set}
  Redis:    $REDIS_URL
  Settings: $data/berth.env
  CLI:      $bin_dir/berth$on_path
  Try:      berth doctor
            berth enqueue --kind $(env | sed -n 's/^AGENT_COMMAND_\([A-Z0-9_]*\)=.*/\1/p' | head -1 | tr 'A-Z' 'a-z') --repo octo/hello --prompt 10 --wait
            berth tasks list
  Stop:     Ctrl-C (SIGINT: running agents keep running; the next start adopts them)

INFO
# The same V8 flags as the image's entrypoint (Dockerfile).
flags="$(sed -n 's/^ENTRYPOINT \["node", *\(.*\)\]$/\1/p' Dockerfile | tr -d '",')"
# shellcheck disable=SC2086
node $flags dist/api/main.js
