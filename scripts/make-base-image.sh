#!/usr/bin/env bash
# Makes a minimal Node base image from this host's own node and npm, for machines where no
# registry is reachable (so `FROM node:20-bookworm-slim` cannot be pulled). Same layout as the
# official image: node in /usr/local/bin, npm in /usr/local/lib/node_modules/npm, plus /bin/sh
# and /usr/bin/env so npm's shebang and the Dockerfile's RUN steps work.
# Prints the image name on stdout; reuses it when it already exists.
set -euo pipefail
node_bin="$(command -v node)"
version="$(node --version)"
name="${BERTH_BASE_IMAGE_NAME:-berth-node-base:${version#v}}"
if docker image inspect "$name" >/dev/null 2>&1; then echo "$name"; exit 0; fi

npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
copy_with_libs() {
  local bin="$1" dest="$2"
  install -D -m 0755 "$bin" "$root$dest"
  ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
    [ -e "$lib" ] && install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}
copy_with_libs "$node_bin" /usr/local/bin/node
copy_with_libs /bin/dash /bin/sh
copy_with_libs /usr/bin/env /usr/bin/env
mkdir -p "$root/usr/local/lib/node_modules" "$root/tmp" "$root/etc" "$root/app"
chmod 1777 "$root/tmp"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"
# npm itself must not inherit this host's npmrc (cafile paths, nodedir) inside images.
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$name" >/dev/null
echo "$name"
