#!/usr/bin/env python3
"""Prints 'N passed, N failed' from meson's testlog.json.

A doctest executable counts as its test cases (from its '[doctest] test cases:' line); any
other test counts as one. A test that meson saw fail (crash, timeout) without doctest
reporting a failed case adds one failure, so nothing failing is ever hidden.
"""
import json
import re
import sys

CASES = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")


def main(path, extra_passed=0, extra_failed=0):
    passed, failed = extra_passed, extra_failed
    with open(path, encoding="utf-8") as log:
        for line in log:
            test = json.loads(line)
            ok = test.get("result") == "OK"
            match = CASES.search(test.get("stdout", "") or "")
            if match:
                p, f = int(match.group(2)), int(match.group(3))
                if not ok and f == 0:
                    f = 1
                passed += p
                failed += f
            elif ok:
                passed += 1
            else:
                failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("testlog", nargs="?", default="build/meson-logs/testlog.json")
    parser.add_argument("--extra-passed", type=int, default=0, help="results run outside meson (fuzzers)")
    parser.add_argument("--extra-failed", type=int, default=0)
    args = parser.parse_args()
    sys.exit(main(args.testlog, args.extra_passed, args.extra_failed))
