#!/usr/bin/env bash
# Builds an agent image on top of berth's (docs/agents.md), the way berth's own image is built:
# BuildKit (the recipes mount the CA bundle as a build secret), the docker CLI that has it, the
# host's network (a package registry behind the host's proxy), the host's CA bundle.
#   scripts/build-agent-image.sh DOCKERFILE TAG [BERTH_IMAGE]      (BERTH_IMAGE default berth:local)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: scripts/build-agent-image.sh DOCKERFILE TAG [BERTH_IMAGE]" >&2
  exit 2
fi
dockerfile="$1" tag="$2" base="${3:-berth:local}"
[ -f "$dockerfile" ] || { echo "build-agent-image: no such Dockerfile: $dockerfile" >&2; exit 2; }
# Debian's docker.io CLI matches its engine and has BuildKit built in; a newer CLI earlier on PATH
# may need a buildx plugin that is not installed ("BuildKit is enabled but the buildx component is missing").
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }
docker image inspect "$base" >/dev/null 2>&1 || { echo "build-agent-image: $base is not on this engine; build it first (scripts/build-image.sh $base)" >&2; exit 1; }
ca="${BUILD_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
args=(--network host --build-arg "BERTH_IMAGE=$base" -f "$dockerfile" -t "$tag")
if [ -n "$ca" ] && [ -f "$ca" ]; then args+=(--secret "id=ca,src=$ca"); fi
echo "build-agent-image: building $tag from $dockerfile on $base" >&2
DOCKER_BUILDKIT=1 docker build --progress=plain "${args[@]}" "$(dirname "$dockerfile")" >&2
echo "$tag"
