#!/usr/bin/env bash
# The whole test suite (npm test): build, check the import direction, run every test
# file one at a time, on the project's Node.js 24. Arguments narrow it to test files
# whose path contains one of them: `npm test -- cosign oci/push`.
set -euo pipefail
cd "$(dirname "$0")/.."
PROVENIX_NODE_QUIET=1
# shellcheck source=scripts/node.sh
. scripts/node.sh
PATH="$PWD/node_modules/.bin:$PATH"
tsc -p tsconfig.json
node scripts/check-imports.mjs
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if [ $# -gt 0 ]; then
  selected=()
  for f in "${files[@]}"; do
    for pat in "$@"; do [[ "$f" == *"$pat"* ]] && selected+=("$f") && break; done
  done
  files=("${selected[@]}")
fi
[ ${#files[@]} -gt 0 ] || { echo "test: no test file matches $*" >&2; exit 2; }
exec node --test --test-concurrency=1 "${files[@]}"
