#!/usr/bin/env bash
# Runs a command with the project's Node.js 24 first on PATH (see scripts/node.sh), so
# that `npm test`, `npm run lint` and the benches run on it whatever node started npm.
set -euo pipefail
PROVENIX_NODE_QUIET=1
# shellcheck source=scripts/node.sh
. "$(dirname "$0")/node.sh"
exec "$@"
