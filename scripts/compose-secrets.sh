#!/usr/bin/env bash
# Makes the secret files compose.yaml mounts, in BERTH_SECRETS_DIR (default ./secrets): a generated
# API token, and empty files for the rest (an empty secret is an unset one). Existing files are kept.
# They are owned by uid 10001 (berth's user in its image) with mode 0400: readable by berth alone.
# Fill in the GitHub ones to use GitHub:  secrets/github-webhook-secret, secrets/github-app-private-key.pem
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${BERTH_SECRETS_DIR:-./secrets}"
mkdir -p "$dir"
for name in api-token board-password github-webhook-secret github-webhook-secret-previous github-app-private-key.pem anthropic-api-key openai-api-key; do
  file="$dir/$name"
  [ -e "$file" ] && continue
  if [ "$name" = api-token ]; then
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$file")
    echo "compose-secrets: generated $file (the API token; also the board password until you set $dir/board-password)" >&2
  else
    : >"$file"
  fi
done
chown 10001:10001 "$dir"/* 2>/dev/null || echo "compose-secrets: could not chown to 10001 (run as root); berth must be able to read these files" >&2
chmod 0400 "$dir"/*
echo "$dir"
