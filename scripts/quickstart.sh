#!/usr/bin/env bash
# Quick start: set up, build the example, attest it, verify it, on the embedded store.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
provenix() { node bin/provenix.js "$@"; }

# No network here: do not wait on the default binary cache.
nixopts=(--option substituters '')
# SLSA Build L3 wants isolated builds: the sandbox on, no silent fallback, and what
# /bin/sh builders use bound in (the example needs no nixpkgs). Where /bin and /lib
# are merged-/usr symlinks, /lib is bound as its target (Nix 2.26 cannot set up a
# symlink there) and of /bin only /bin/sh: never /bin=/usr/bin, through which Nix
# would write its own /bin/sh binding over the host's.
paths="/usr"
if [ -L /bin ]; then paths="$paths /bin/sh=$(readlink -f /bin/sh)"; else paths="$paths /bin"; fi
if [ -L /lib ]; then paths="$paths /lib=$(readlink -f /lib)"; else paths="$paths /lib"; fi
if [ -L /lib64 ]; then paths="$paths /lib64=$(readlink -f /lib64)?"; else paths="$paths /lib64?"; fi
sandbox=(--option sandbox true --option sandbox-fallback false
  --option extra-sandbox-paths "$paths")
echo "== building examples/hello.nix with the sandbox on" >&2
if nix-build examples/hello.nix "${nixopts[@]}" "${sandbox[@]}" -o result; then
  echo "== built with the sandbox on (or already built)" >&2
else
  echo "== this machine could not build it sandboxed; building without the sandbox" >&2
  nix-build examples/hello.nix "${nixopts[@]}" --option sandbox false -o result
fi

if [ ! -e "${PROVENIX_KEY:-${XDG_CONFIG_HOME:-$HOME/.config}/provenix/signing.key}" ]; then
  echo "== provenix keygen" >&2
  provenix keygen
fi
echo "== provenix attest ./result" >&2
provenix attest ./result
echo "== provenix verify ./result and every other output of its derivation" >&2
provenix verify ./result $(nix-store --query --outputs "$(nix-store --query --deriver "$(readlink result)")")
