#!/usr/bin/env bash
# The main job: the 5-node example (4 honest nodes + 1 Empire attacker, coordinate-wise median)
# trained on Fashion-MNIST over tcp loopback, one process per node, ending with a summary table:
# first with the reference's protocol (nodes exchange gradients; each steps on half its own
# gradient plus half the robust aggregate, --self-weight 0.5), then with model exchange (nodes
# exchange half-step models), which also keeps the honest models together on the ring; and last
# what the defence buys: configs/sweeps/demo.yaml (`p2pnode sweep`), three runs of the same
# example, harmless attacker / Gaussian attack against the mean / the same against the median.
# Sets up and builds first (tools/setup-debian.sh). Extra flags go to both `p2pnode launch`
# runs, e.g.   tools/demo.sh --pattern hub --endpoint ipc --rounds 100
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh || exit 1
echo "== 1/3: gradient exchange (the reference's protocol, the default; self weight 0.5) =="
build/p2pnode launch --config configs/nodes_example.yaml --endpoint tcp --metrics-dir metrics/demo "$@" || exit $?
echo
echo "== 2/3: model exchange (--exchange model) =="
build/p2pnode launch --config configs/nodes_example.yaml --endpoint tcp --metrics-dir metrics/demo-model \
    --exchange model "$@" || exit $?
echo
echo "== 3/3: what the defence buys (p2pnode sweep configs/sweeps/demo.yaml; nodes as threads) =="
build/p2pnode sweep configs/sweeps/demo.yaml --out metrics/demo-sweep --force || exit $?
echo
sed -n '/^| attack/,/^$/p' metrics/demo-sweep/summary.md
