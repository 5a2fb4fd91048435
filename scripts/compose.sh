#!/usr/bin/env bash
# berth with compose, on a machine with a registry or without one, with compose v2 or v1.
#   scripts/compose.sh up          images made here when they cannot be pulled, then `up -d`
#   scripts/compose.sh redeploy    berth's image again, then berth alone recreated (Redis left running)
#   scripts/compose.sh <args…>     anything else goes to compose as it is (logs berth, ps, down)
# BERTH_IMAGE (default berth:local) is built by scripts/build-image.sh unless it names another image
# that exists; REDIS_IMAGE (default redis:7-bookworm) is pulled, or made from this host's redis-server
# by scripts/make-redis-image.sh. COMPOSE_PROJECT_NAME and .env are read by compose itself.
set -euo pipefail
cd "$(dirname "$0")/.."
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose -f compose.yaml)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose -f compose.yaml)
else
  echo "compose: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed (Debian: apt-get install docker-compose)" >&2
  exit 1
fi

berth_image() {
  export BERTH_IMAGE="${BERTH_IMAGE:-berth:local}"
  if [ "$BERTH_IMAGE" = "berth:local" ] || ! docker image inspect "$BERTH_IMAGE" >/dev/null 2>&1; then
    scripts/build-image.sh "$BERTH_IMAGE" >/dev/null
    echo "compose: built $BERTH_IMAGE" >&2
  else
    echo "compose: using $BERTH_IMAGE as it is" >&2
  fi
}
redis_image() {
  export REDIS_IMAGE="${REDIS_IMAGE:-redis:7-bookworm}"
  if docker image inspect "$REDIS_IMAGE" >/dev/null 2>&1 || timeout 60 docker pull -q "$REDIS_IMAGE" >/dev/null 2>&1; then return; fi
  REDIS_IMAGE="$(scripts/make-redis-image.sh)"
  echo "compose: no registry for redis; made $REDIS_IMAGE from this host's redis-server" >&2
}

case "${1:-}" in
  up)
    berth_image
    redis_image
    echo "compose: ${compose[*]} up -d --no-build" >&2
    "${compose[@]}" up -d --no-build
    ;;
  redeploy)
    berth_image
    redis_image
    # --no-deps: Redis is not recreated, restarted or touched; berth's running agents are adopted.
    echo "compose: ${compose[*]} up -d --no-deps --no-build --force-recreate berth" >&2
    "${compose[@]}" up -d --no-deps --no-build --force-recreate berth
    ;;
  *) "${compose[@]}" "$@" ;;
esac
