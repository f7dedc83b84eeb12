#!/usr/bin/env bash
# Quick start: set up, build the example, attest it, verify it, on the embedded store.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
provenix() { node bin/provenix.js "$@"; }

# No network here: do not wait on the default binary cache.
nixopts=(--option substituters '')
echo "== building examples/hello.nix" >&2
nix-build examples/hello.nix "${nixopts[@]}" -o result

if [ ! -e "${PROVENIX_KEY:-${XDG_CONFIG_HOME:-$HOME/.config}/provenix/signing.key}" ]; then
  echo "== provenix keygen" >&2
  provenix keygen
fi
echo "== provenix attest ./result" >&2
provenix attest ./result
echo "== provenix verify ./result and every other output of its derivation" >&2
provenix verify ./result $(nix-store --query --outputs "$(nix-store --query --deriver "$(readlink result)")")
