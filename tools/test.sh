#!/usr/bin/env bash
# Sets up (tools/setup-debian.sh), builds, runs every test, then, when clang++ is present, the
# libFuzzer targets for the wire decoder and the config loader for P2PNODE_FUZZ_SECONDS each
# (default 60) from the checked-in seed corpus. Ends with "N passed, N failed": doctest test
# cases, each other meson test as one, each fuzzer as one. Exit status: non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 "$@"
status=$?

fuzz_passed=0
fuzz_failed=0
if command -v clang++ >/dev/null 2>&1; then
  seconds=${P2PNODE_FUZZ_SECONDS:-60}
  if [ ! -f build-fuzz/build.ninja ]; then
    CXX=clang++ meson setup build-fuzz -Dfuzzing=true --wrap-mode=nodownload >/dev/null || fuzz_failed=$((fuzz_failed + 1))
  fi
  if meson compile -C build-fuzz >/dev/null; then
    for target in wire config; do
      corpus=$(mktemp -d)
      cp tests/fuzz/corpus/"$target"/* "$corpus"/
      echo "fuzz: $target for ${seconds}s"
      if build-fuzz/tests/fuzz/fuzz-"$target" -max_total_time="$seconds" -rss_limit_mb=2048 "$corpus" \
           >"build-fuzz/fuzz-$target.log" 2>&1; then
        fuzz_passed=$((fuzz_passed + 1))
        echo "fuzz: $target ok ($(grep -o 'Done [0-9]* runs' "build-fuzz/fuzz-$target.log"))"
      else
        fuzz_failed=$((fuzz_failed + 1))
        echo "fuzz: $target FAILED; the crash and its input are in build-fuzz/fuzz-$target.log"
        tail -40 "build-fuzz/fuzz-$target.log"
      fi
      rm -rf "$corpus"
    done
  else
    fuzz_failed=$((fuzz_failed + 1))
  fi
else
  echo "fuzz: clang++ not found; the fuzz targets did not run"
fi
[ "$fuzz_failed" -eq 0 ] || status=1
python3 tools/test_summary.py build/meson-logs/testlog.json --extra-passed "$fuzz_passed" --extra-failed "$fuzz_failed" || status=1
exit $status
