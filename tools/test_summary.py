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


def main(path):
    passed = failed = 0
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
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs/testlog.json"))
