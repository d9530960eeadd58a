#!/usr/bin/env bash
# The main job: a local multi-node run of the 5-node example (4 honest + 1 Byzantine).
# Sets up and builds first (tools/setup-debian.sh).
#
# Today the transports are not built: each node validates the example config and its flags and
# reports that training over the mesh is not built yet; then the single-node baseline
# (`p2pnode train`) trains honest node 0's shard for 50 rounds. This script says so plainly.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh || exit 1
config=configs/nodes_example.yaml
echo "demo: 5-node mesh example from $config"
not_built=0
for id in 0 1 2 3 4; do
  build/p2pnode mesh --config "$config" --node-id "$id"
  rc=$?
  case $rc in
    0) ;;
    3) not_built=$((not_built + 1)) ;;
    *) echo "demo: node $id failed with status $rc" >&2; exit "$rc" ;;
  esac
done
if [ "$not_built" -gt 0 ]; then
  echo "demo: all 5 nodes validated their settings; multi-node training is not built yet (it lands with the transports issue)."
fi
echo "demo: meanwhile, the single-node baseline: honest node 0's shard (0/4), 50 rounds, metrics in metrics/demo-train.jsonl"
build/p2pnode train --shard 0/4 --rounds 50 --metrics metrics/demo-train.jsonl
