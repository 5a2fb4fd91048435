#!/usr/bin/env bash
# Makes a Node base image for machines where no registry is reachable (so `FROM node:…-bookworm-slim`
# cannot be pulled): a real Debian bookworm made with debootstrap from Debian's own packages, with
# git and CA certificates (the worker clones repositories), plus this host's node and npm in the
# official image's layout (/usr/local/bin/node, /usr/local/lib/node_modules/npm). Agent CLIs from
# npm that need more of Debian than node does (librt, libstdc++, a shell) run on it, as they do on
# the official slim image.
# Prints the image name on stdout; reuses it when it already exists.
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin="$(readlink -f "$(command -v node)")"
version="$(node --version)"
# The script's own content is in the tag: a changed recipe makes a new base, never a stale one.
recipe="$(sha256sum "$0" | cut -c1-8)"
name="${BERTH_BASE_IMAGE_NAME:-berth-debian-base:${version#v}-$recipe}"
docker() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else command docker "$@"; fi; }
if docker image inspect "$name" >/dev/null 2>&1; then echo "$name"; exit 0; fi
command -v debootstrap >/dev/null 2>&1 || { echo "make-base-image: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

# The Debian mirror this host already uses (deb822 or one-line sources), else Debian's default.
mirror="$(grep -hoE '^URIs: *http[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | sed 's/^URIs: *//')"
[ -n "$mirror" ] || mirror="$(grep -hoE '^deb +(\[[^]]*\] +)?http[^ ]+/debian/? +bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 | grep -oE 'http[^ ]+' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "make-base-image: debootstrap bookworm from $mirror (about a minute)" >&2
debootstrap --variant=minbase --include=git,ca-certificates,util-linux bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  exit 1
}
rm -f "$root.log"

npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# Same user as the official image; berth's own processes run as a numeric uid anyway.
chroot "$root" /usr/sbin/groupadd -g 1000 node
chroot "$root" /usr/sbin/useradd -u 1000 -g node -s /bin/sh -m node
# Slim like bookworm-slim: no apt lists, docs or caches in the layer.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
chroot "$root" node --version >/dev/null
chroot "$root" git --version >/dev/null

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$name" >/dev/null
echo "$name"
