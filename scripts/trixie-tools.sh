#!/usr/bin/env bash
# Independent verifiers from Debian trixie, for the interoperability tests: cosign 2.5
# and sigstore-go 0.7 are static Go programs that run on Debian 12 as they are. The
# .debs come through apt-get with a private sources list, state and cache under
# .tools/trixie/apt, so the machine's own apt setup is untouched; `dpkg -x` unpacks
# them into .tools/trixie/root. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/.tools/trixie"
root="$dir/root"
packages=(cosign sigstore-go)

missing=()
[ -x "$root/usr/bin/cosign" ] || missing+=(cosign)
[ -x "$root/usr/bin/sigstore-go-verification" ] || missing+=(sigstore-go)
[ ${#missing[@]} -gt 0 ] || exit 0

mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
  >"$dir/apt/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$dir/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache"
  -o APT::Get::List-Cleanup=false -o APT::Sandbox::User=root
)
echo "setup: fetching ${packages[*]} from Debian trixie into .tools/trixie" >&2
apt-get "${apt_opts[@]}" -qq update
(cd "$dir/debs" && apt-get "${apt_opts[@]}" -qq download "${packages[@]}")
for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$root"; done
"$root/usr/bin/cosign" version 2>/dev/null | grep -m1 GitVersion >&2
