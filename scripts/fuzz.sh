#!/usr/bin/env bash
# fuzz.sh FUZZTIME PKG... runs every Fuzz target of the given packages, one
# after another, each for FUZZTIME. New crashers land in the package's
# testdata/fuzz directory, where plain `go test` replays them.
set -euo pipefail
fuzztime=$1
shift
mapfile -t pkgs < <(go list "$@")
n=0
for pkg in "${pkgs[@]}"; do
	mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for target in "${targets[@]}"; do
		echo "fuzz: $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, $fuzztime each"
if ((n == 0)); then
	echo "fuzz: no Fuzz targets found" >&2
	exit 1
fi
