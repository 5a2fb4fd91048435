#!/usr/bin/env bash
# Copies the pictures of the last test run (test-output/) into docs/img for docs/tour.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cp test-output/board/failed-task-logs.png docs/img/board-failed-task-logs.png
cp test-output/board/after-retry.png docs/img/board-after-retry.png
cp test-output/prometheus-berth-tasks.png docs/img/prometheus-berth-tasks.png
echo "docs/img refreshed from test-output/; the check run in docs/tour.md is test-output/check-run.md"
