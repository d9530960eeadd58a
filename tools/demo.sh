#!/usr/bin/env bash
# The main job: the 5-node example (4 honest nodes + 1 Empire attacker, coordinate-wise median)
# trained on Fashion-MNIST over tcp loopback, one process per node, ending with a summary table.
# Sets up and builds first (tools/setup-debian.sh). Extra flags go to `p2pnode launch`, e.g.
#   tools/demo.sh --pattern hub --endpoint ipc --rounds 100
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh || exit 1
exec build/p2pnode launch --config configs/nodes_example.yaml --endpoint tcp --metrics-dir metrics/demo "$@"
