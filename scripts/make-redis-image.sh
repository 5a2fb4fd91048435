#!/usr/bin/env bash
# Makes a minimal Redis image from this host's redis-server and redis-cli, for machines where no
# registry is reachable (so compose's `redis:7-bookworm` cannot be pulled). Prints the image name.
set -euo pipefail
version="$(redis-server --version | grep -oE 'v=[0-9.]+' | cut -d= -f2)"
name="${BERTH_REDIS_IMAGE_NAME:-berth-redis-local:$version}"
if docker image inspect "$name" >/dev/null 2>&1; then echo "$name"; exit 0; fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
for bin in /usr/bin/redis-server /usr/bin/redis-cli; do
  install -D -m 0755 "$(readlink -f "$bin")" "$root$bin"
  ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
    [ -e "$lib" ] && install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
done
mkdir -p "$root/data" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/nonexistent\n' >"$root/etc/passwd"
tar -C "$root" -c . | docker import --change 'WORKDIR /data' --change 'CMD ["redis-server"]' --change 'EXPOSE 6379' - "$name" >/dev/null
echo "$name"
