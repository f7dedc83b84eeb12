#!/usr/bin/env bash
# Benchmark: a large graph (../shared/bench/graph.nix, 50,000 derivations by
# default) end to end, beside Nix on the same data: instantiation, the
# build-closure SBOM beside `nix show-derivation -r`, `attest` of every built
# derivation beside `nix path-info --json` of the outputs, and `verify --policy`
# of their runtime closure beside `nix store verify -r`. Wall time and peak RSS
# (GNU time) of each command, best of two runs (attest: one, on an empty
# store); ratios printed.
#
#   bench/large-graph.sh [--n 50000] [--seed 7] [--build-seconds S] [--work DIR]
#
# Building 50,000 derivations takes under an hour on a 2-core machine, and is
# resumable: a later run with the same --seed and --work builds only what is
# left. --build-seconds bounds the building; what was built is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
n=50000 seed=7 build_seconds=0 work=/var/tmp/provenix-large-graph
while [ $# -gt 0 ]; do
  case $1 in
    --n) n=$2 ;;
    --seed) seed=$2 ;;
    --build-seconds) build_seconds=$2 ;;
    --work) work=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
NODE=$ROOT/.tools/node/bin/node
PROVENIX=("$NODE" "$ROOT/bin/provenix.js")
NIX=(nix --extra-experimental-features nix-command)
# Nix 2.15 renamed `nix show-derivation` to `nix derivation show`.
if "${NIX[@]}" derivation show --help > /dev/null 2>&1; then SHOW=(derivation show); else SHOW=(show-derivation); fi
mkdir -p "$work"
export HOME=$work/home XDG_DATA_HOME=$work/home/data XDG_CONFIG_HOME=$work/home/config
# Everything is built here: no substituter is asked (each nix-store would first
# retry an unreachable cache.nixos.org for seconds).
export NIX_CONFIG="substituters ="
ulimit -s unlimited # tens of thousands of store paths as arguments
log=$work/time.log

# measure RUNS WHAT CMD...: the best of RUNS runs (the first also warms the page
# cache for whoever runs next); prints it and returns its seconds.
measure() {
  local runs=$1 what=$2 best="" bestkib=0
  shift 2
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$log" "$@" > /dev/null 2> "$work/stderr" || {
      echo "$what failed:" >&2
      tail -5 "$work/stderr" >&2
      exit 1
    }
    read -r s kib < "$log"
    if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$s bestkib=$kib
    fi
  done
  printf '  %-58s %8.2f s %6d MiB\n' "$what" "$best" $((bestkib / 1024)) >&2
  echo "$best"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "  %-58s %8.2fx\n", "  ratio", a / b }' >&2; }

echo "graph: n=$n seed=$seed, work in $work" >&2
if [ ! -e "$work/top.drv" ]; then
  measure 1 "nix-instantiate graph.nix --arg n $n" \
    nix-instantiate ../shared/bench/graph.nix --arg n "$n" --arg seed "$seed" \
    --add-root "$work/top.drv" --indirect > /dev/null
fi
top=$(readlink "$work/top.drv")

show=$(measure 2 "nix ${SHOW[*]} -r <top.drv>" "${NIX[@]}" "${SHOW[@]}" -r "$top")
for format in cyclonedx spdx; do
  t=$(measure 2 "provenix sbom --closure build --format $format -o FILE" \
    "${PROVENIX[@]}" sbom --closure build --format "$format" "$top" -o "$work/sbom.json")
  ratio "$t" "$show"
done

echo "building (resumable; --build-seconds $build_seconds)..." >&2
# The packages, in the graph's order, 250 to a nix-store: one nix-store holding all
# 50,000 goals grows past 500 MB, and each build's fork of it then spends 17 ms in
# clone(): 6.5 builds a second instead of 20-35. (The top derivation is not built: its builder's environment names every
# package, one variable over the kernel's 128 KiB limit from a few thousand on.)
start=$SECONDS
left() { if [ "$build_seconds" -gt 0 ]; then echo $((build_seconds - (SECONDS - start))); else echo 86400; fi; }
nix-store -qR "$top" | grep '\.drv$' | grep -v -- '-top\.drv$' | sed -E 's/^(.*-pkg([0-9]+)-[^/]*)$/\2 \1/' |
  sort -n | cut -d' ' -f2 > "$work/ordered.drvs"
rm -f "$work"/chunk.*
split -l 250 -d -a 4 "$work/ordered.drvs" "$work/chunk."
for chunk in "$work"/chunk.*; do
  [ "$(left)" -gt 0 ] || break
  # No GC roots: rm -rf the work directory and `nix-store --gc` frees it all.
  timeout "$(left)" nix-store --realise $(cat "$chunk") -j 4 > /dev/null 2>> "$work/realise.log" || true
done
rm -f "$work"/chunk.*

nix-store -qR "$top" | grep '\.drv$' | grep -v -- '-top\.drv$' > "$work/all.drvs"
nix-store -q --outputs $(cat "$work/all.drvs") > "$work/all.outs"
nix-store --check-validity --print-invalid $(cat "$work/all.outs") > "$work/invalid.outs" || true
paste "$work/all.drvs" "$work/all.outs" | grep -vFf "$work/invalid.outs" > "$work/built.pairs" || true
cut -f1 "$work/built.pairs" > "$work/built.drvs"
cut -f2 "$work/built.pairs" > "$work/built.outs"
built=$(wc -l < "$work/built.drvs")
echo "built: $built of $(wc -l < "$work/all.drvs") derivations" >&2
[ "$built" -gt 0 ] || exit 0

rm -rf "$work/home"
"${PROVENIX[@]}" keygen > /dev/null
printf 'apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keys: ["%s"]\n' \
  "$(cat "$work/home/config/provenix/signing.pub")" > "$work/policy.yaml"

pathinfo=$(measure 2 "nix path-info --json <$built outputs>" "${NIX[@]}" path-info --json $(cat "$work/built.outs"))
t=$(measure 1 "provenix attest --json <$built derivations>" "${PROVENIX[@]}" attest --json $(cat "$work/built.drvs"))
ratio "$t" "$pathinfo"
awk -v t="$t" -v n="$built" 'BEGIN { printf "  %-58s %8.3f ms\n", "  per attestation", t * 1000 / n }' >&2

# Their runtime closure (the built outputs are roots, their references the rest):
# `verify --policy --closure runtime` beside `nix store verify -r`, which rehashes
# every path, with and without checking trust.
nixverify=$(measure 2 "nix store verify -r --no-trust <$built outputs>" "${NIX[@]}" store verify -r --no-trust $(cat "$work/built.outs"))
nixtrust=$(measure 2 "nix store verify -r <$built outputs>" "${NIX[@]}" store verify -r $(cat "$work/built.outs"))
t=$(measure 2 "provenix verify --policy --closure runtime --no-rehash <$built outputs>" \
  "${PROVENIX[@]}" verify --policy "$work/policy.yaml" --closure runtime --no-rehash $(cat "$work/built.outs"))
ratio "$t" "$nixverify"
t=$(measure 2 "provenix verify --policy --closure runtime <$built outputs> (rehash)" \
  "${PROVENIX[@]}" verify --policy "$work/policy.yaml" --closure runtime $(cat "$work/built.outs"))
ratio "$t" "$nixtrust"
