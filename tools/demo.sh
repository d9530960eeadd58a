#!/usr/bin/env bash
# The main job: the 5-node example (4 honest nodes + 1 Empire attacker, coordinate-wise median)
# trained on Fashion-MNIST over tcp loopback, one process per node, ending with a summary table:
# first with the reference's protocol (nodes exchange gradients; each steps on half its own
# gradient plus half the robust aggregate, --self-weight 0.5), then with model exchange (nodes
# exchange half-step models), which also keeps the honest models together on the ring.
# Sets up and builds first (tools/setup-debian.sh). Extra flags go to both `p2pnode launch`
# runs, e.g.   tools/demo.sh --pattern hub --endpoint ipc --rounds 100
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh || exit 1
echo "== 1/2: gradient exchange (the reference's protocol, the default; self weight 0.5) =="
build/p2pnode launch --config configs/nodes_example.yaml --endpoint tcp --metrics-dir metrics/demo "$@" || exit $?
echo
echo "== 2/2: model exchange (--exchange model) =="
exec build/p2pnode launch --config configs/nodes_example.yaml --endpoint tcp --metrics-dir metrics/demo-model \
    --exchange model "$@"
