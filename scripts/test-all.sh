#!/usr/bin/env bash
# The whole suite on both Nix versions CI covers (npm run test:all): this machine's
# Nix (Debian 12's 2.8), then Debian trixie's Nix 2.26 in the project's trixie root
# (scripts/trixie-root.sh; needs root for debootstrap and mount namespaces).
# Arguments narrow both runs to matching test files, as for scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== the test suite on $(nix --version)" >&2
scripts/test.sh "$@"
./scripts/trixie-root.sh setup
echo "== the test suite on Debian trixie's $(./scripts/trixie-root.sh run nix --version)" >&2
./scripts/trixie-root.sh run scripts/test.sh "$@"
