#!/usr/bin/env bash
# Builds berth's image from the project's Dockerfile.
#   scripts/build-image.sh [TAG]        (default berth:local)
# NODE_IMAGE     base image; default node:24-bookworm-slim when it can be had, otherwise a base
#                made with debootstrap from Debian's packages plus this host's Node (scripts/make-base-image.sh).
# BUILD_CA_BUNDLE  CA bundle for a TLS-intercepting proxy; defaults to the host's bundle when present.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-berth:local}"
# Debian's docker.io CLI matches its engine and has BuildKit built in; a newer CLI earlier on PATH
# may need a buildx plugin that is not installed.
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }
official="node:24-bookworm-slim"
if [ -z "${NODE_IMAGE:-}" ]; then
  if docker image inspect "$official" >/dev/null 2>&1 || timeout 60 docker pull -q "$official" >/dev/null 2>&1; then
    NODE_IMAGE="$official"
  else
    echo "build-image: $official cannot be pulled here; making a Debian base (debootstrap) with this host's Node" >&2
    NODE_IMAGE="$(scripts/make-base-image.sh)"
  fi
fi
ca="${BUILD_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
args=(--network host --build-arg "NODE_IMAGE=$NODE_IMAGE" -t "$tag")
if [ -n "$ca" ] && [ -f "$ca" ]; then args+=(--secret "id=ca,src=$ca"); fi
echo "build-image: building $tag on $NODE_IMAGE" >&2
if [ -n "${BUILD_VERBOSE:-}" ]; then
  DOCKER_BUILDKIT=1 docker build --progress=plain "${args[@]}" . >&2
else
  log="$(mktemp)"
  if ! DOCKER_BUILDKIT=1 docker build --progress=plain "${args[@]}" . >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "build-image: build failed (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
fi
echo "$tag"
