#!/usr/bin/env bash
# A second Nix for the tests: Debian trixie's Nix 2.26 in a root of the project's own
# (.tools/trixie-root), made with debootstrap and entered the way a trixie host would
# run it, with a working sandbox.
#
#   scripts/trixie-root.sh setup        make the root (about two minutes), once
#   scripts/trixie-root.sh run CMD...   run CMD in it, in /w/main (this project) with
#                                       ../shared at /w/shared, as on a trixie machine
#
# The root is entered with its own mount namespace and pivot_root, not chroot: Nix
# cannot sandbox inside a plain chroot and falls back silently. Its build users get
# uids 30001+ so that they cannot clash with the host's (Nix kills every process of
# a build user's uid). The project's Node.js 24 (.tools/node) serves inside as well.
set -euo pipefail
cd "$(dirname "$0")/.."
project="$PWD"
shared="$(cd .. && pwd)/shared"
root="$project/.tools/trixie-root"
mirror="${PROVENIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=(
  nix-bin ca-certificates openssl procps git xz-utils bzip2
  python3 python3-securesystemslib python3-nacl python3-cryptography
  docker-registry skopeo diffoscope-minimal apache2-utils nginx softhsm2
)

# What the root is made of: when this changes, setup brings the root up to date.
stamp="trixie minbase; ${packages[*]}; nixbld 30001-30010"

setup() {
  [ "$(cat "$root/.provenix-ready" 2>/dev/null)" = "$stamp" ] && return 0
  command -v debootstrap >/dev/null 2>&1 || {
    echo "trixie-root: installing debootstrap with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  if [ ! -x "$root/bin/sh" ]; then
    echo "trixie-root: debootstrap --variant=minbase trixie (about a minute)" >&2
    rm -rf "$root.new"
    debootstrap --variant=minbase trixie "$root.new" "$mirror" >"$project/.tools/trixie-root.log" 2>&1 ||
      { tail -5 "$project/.tools/trixie-root.log" >&2; exit 1; }
    mv "$root.new" "$root"
  fi
  # The registries may be reached through a proxy whose CA this machine trusts.
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # Packages' services are not started in the root (no init there).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
  echo "trixie-root: installing ${packages[*]} in the root" >&2
  inside "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages[*]} >/dev/null && update-ca-certificates >/dev/null"
  # nixbld users that cannot clash with the host's uids.
  inside 'getent group nixbld >/dev/null || groupadd -g 30000 nixbld
    for i in $(seq 1 10); do
      id "nixbld$i" >/dev/null 2>&1 || useradd -u $((30000 + i)) -g nixbld -G nixbld -M -N -s /usr/sbin/nologin -d /var/empty "nixbld$i"
    done
    mkdir -p /etc/nix && touch /etc/nix/nix.conf
    grep -q "^build-users-group" /etc/nix/nix.conf || echo "build-users-group = nixbld" >>/etc/nix/nix.conf
    [ -e /nix/var/nix/db/db.sqlite ] || nix-store --init'
  echo "$stamp" >"$root/.provenix-ready"
}

# Run a shell command in the root: own mount namespace, pivot_root, /proc, /dev, /sys,
# a fresh /tmp, the project and ../shared bound in.
inside() {
  unshare --mount --propagation private -- /bin/bash -s -- "$root" "$project" "$shared" "$1" <<'ENTER'
set -euo pipefail
root="$1" project="$2" shared="$3" cmd="$4"
mount --bind "$root" "$root"
mkdir -p "$root/w/main" "$root/w/shared" "$root/.old"
mount --bind "$project" "$root/w/main"
[ -d "$shared" ] && mount --bind "$shared" "$root/w/shared"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
cd "$root"
pivot_root . .old
cd /
umount -l /.old
exec env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
  PATH=/w/main/.tools/node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c "cd /w/main && $cmd"
ENTER
}

case "${1:-}" in
  setup) setup ;;
  run)
    shift
    setup
    inside "$*"
    ;;
  *)
    echo "usage: scripts/trixie-root.sh setup | run CMD..." >&2
    exit 2
    ;;
esac
