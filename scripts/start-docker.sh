#!/usr/bin/env bash
# Starts the Docker engine in the background unless one answers already; waits for its socket.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
docker_cli=/usr/bin/docker; [ -x "$docker_cli" ] || docker_cli=docker
if $docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; then exit 0; fi
log="${BERTH_DOCKERD_LOG:-/var/log/berth-dockerd.log}"
echo "start-docker: starting dockerd (log: $log)" >&2
$SUDO sh -c "nohup dockerd >>'$log' 2>&1 &"
for _ in $(seq 1 120); do
  if $docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "start-docker: engine $($docker_cli version --format '{{.Server.Version}}') ready" >&2
    exit 0
  fi
  sleep 0.5
done
echo "start-docker: dockerd did not answer within 60 s; last log lines:" >&2
$SUDO tail -20 "$log" >&2 || true
exit 1
