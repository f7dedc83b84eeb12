#!/usr/bin/env bash
# Installs what provenix and its tests need on Debian: Nix (nix-bin), Node.js 24
# (scripts/node.sh), the npm packages, the independent verifiers from Debian trixie
# (scripts/trixie-tools.sh), then builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nix-build >/dev/null 2>&1 || need_apt+=(nix-bin)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
# Tests check our signatures with an independent implementation: Python's securesystemslib.
/usr/bin/python3 -c "import securesystemslib.signer, nacl" >/dev/null 2>&1 ||
  need_apt+=(python3 python3-securesystemslib python3-nacl python3-cryptography)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${need_apt[*]} with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Real peers for the tests, without their recommends: diffoscope (rebuild diffs), an OCI
# registry (distribution 2.8) and skopeo as an independent registry client, Apache's
# htpasswd (bcrypt for the registry), nginx (a binary cache that takes PUT uploads),
# SoftHSM2 (a PKCS#11 token for keys that never touch the disk).
extra=()
command -v diffoscope >/dev/null 2>&1 || extra+=(diffoscope-minimal)
command -v docker-registry >/dev/null 2>&1 || extra+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || extra+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || extra+=(apache2-utils)
command -v nginx >/dev/null 2>&1 || extra+=(nginx)
command -v softhsm2-util >/dev/null 2>&1 || extra+=(softhsm2)
if [ ${#extra[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${extra[*]} with apt-get" >&2
  [ ${#need_apt[@]} -gt 0 ] || $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${extra[@]}" >/dev/null
fi

# Nix creates its database on first use; the daemon and its tests read it from the start.
if [ "$(id -u)" -eq 0 ] && [ ! -e /nix/var/nix/db/db.sqlite ]; then
  nix-store --init
fi

# shellcheck source=scripts/node.sh
. scripts/node.sh
./scripts/trixie-tools.sh

# A native addon is built for one Node ABI: a different node means a fresh install.
stamp=node_modules/.provenix-node
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
  [ "$(cat "$stamp" 2>/dev/null)" != "$(node --version)" ]; then
  echo "setup: npm ci on Node.js $(node --version)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  node --version >"$stamp"
fi
npm run --silent build
