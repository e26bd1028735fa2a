#!/usr/bin/env bash
# Runs every fuzz target (func Fuzz... in a tracked _test.go file) for
# FUZZTIME each. A crash fails, and Go keeps the input that caused it under
# the package's testdata/fuzz/<target>.
#
# One failure is not a finding: Go 1.26's fuzzing coordinator can report
# "context deadline exceeded" at the end of -fuzztime when a worker is slow
# to stop on a busy machine (golang/go#75804, fixed in Go 1.27). A run that
# ends that way and wrote no new input under testdata/fuzz is reported as
# that race and does not fail; any other failure does.
set -euo pipefail
fuzztime="${FUZZTIME:-10s}"
for file in $(git ls-files '*_test.go' | xargs grep -l '^func Fuzz'); do
	dir=$(dirname "$file")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "fuzz $dir $target ($fuzztime)"
		corpus="$dir/testdata/fuzz/$target"
		before=$(ls "$corpus" 2>/dev/null | sort || true)
		out=$(mktemp)
		if (cd "$dir" && go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" .) 2>&1 | tee "$out"; then
			rm -f "$out"
			continue
		fi
		after=$(ls "$corpus" 2>/dev/null | sort || true)
		if [ "$before" = "$after" ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			echo "fuzz $dir $target: stopped by Go's fuzztime race (golang/go#75804), no failing input written: not a finding"
			rm -f "$out"
			continue
		fi
		rm -f "$out"
		echo "fuzz $dir $target: FAILED" >&2
		exit 1
	done
done
