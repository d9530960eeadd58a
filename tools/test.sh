#!/usr/bin/env bash
# Sets up (tools/setup-debian.sh), builds, runs every test, and ends with "N passed, N failed"
# counting doctest test cases (and each non-doctest test as one). Exit status: meson test's.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 "$@"
status=$?
python3 tools/test_summary.py build/meson-logs/testlog.json || status=1
exit $status
