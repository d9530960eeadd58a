#!/usr/bin/env bash
# Reproduces README's accuracy table ("Round protocol"): the 5-node example and variants of it,
# each with gradient exchange stepping on the aggregate alone (--self-weight 0, the reference's
# step), gradient exchange with the default self weight 1/2, and model exchange, as the mean
# final accuracy of the honest nodes over seeds (nodes as threads over inproc; the same bits as
# tcp or ipc), beside one shard trained alone for the same number of steps. Takes ~20 minutes
# on 2 cores with the default ten seeds.
# Usage: tools/accuracy-table.sh [SEEDS="0 1 ... 9"] [extra flags for the launch runs...]
# (the single-shard baselines always use train's defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-"0 1 2 3 4 5 6 7 8 9"}
shift || true
[ -x build/p2pnode ] || { meson setup build --wrap-mode=nodownload >/dev/null; }
meson compile -C build >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
example=configs/nodes_example.yaml
# Variants of the example: all five nodes honest; node 4 left out; a complete graph.
sed 's/type: byzantine/type: honest/' "$example" >"$work/five-honest.yaml"
sed '/- id: 4/,$d' "$example" >"$work/four-honest.yaml"
sed 's/^robust:/topology: {type: complete}\nrobust:/' "$example" >"$work/complete.yaml"

# mean final accuracy of the honest nodes over the seeds: CONFIG FLAGS...
honest_mean() {
  local cfg=$1
  shift
  for s in $seeds; do
    build/p2pnode launch --config "$cfg" --endpoint inproc --metrics-dir '' --seed "$s" "$@" 2>/dev/null |
      awk '$2 == "honest" && NF >= 5 { print $5 }'
  done | awk '{ s += $1; n++ } END { if (n) printf "%.3f", s / n; else printf "-" }'
}
single_mean() {  # H: shards h/H, each alone, over the seeds (train's defaults: 50 steps, batch 64, lr 0.05)
  local H=$1
  for s in $seeds; do
    for h in $(seq 0 $((H - 1))); do
      build/p2pnode train --seed "$s" --shard "$h/$H" --metrics '' 2>/dev/null | awk -F'acc=' '/Final/ { print $2 }'
    done
  done | awk '{ s += $1; n++ } END { printf "%.3f", s / n }'
}
row() {  # LABEL CONFIG FLAGS...
  local label=$1 cfg=$2
  shift 2
  printf "%-52s %10s %10s %10s\n" "$label" "$(honest_mean "$cfg" --self-weight 0 "$@" "${extra[@]}")" \
    "$(honest_mean "$cfg" "$@" "${extra[@]}")" "$(honest_mean "$cfg" --exchange model "$@" "${extra[@]}")"
}
extra=("$@")

echo "mean final accuracy of the honest nodes, seeds: $seeds${extra:+, flags: ${extra[*]}}"
printf "%-52s %10s %10s %10s\n" "run (ring k=1 unless said)" "gradient" "gradient" "model"
printf "%-52s %10s %10s %10s\n" "" "weight 0" "weight 1/2" "weight 1/2"
row "the example: median vs Empire -1" "$example"
row "the same, node 4 benign (--byz-scale 1)" "$example" --byz-scale 1
row "5 honest nodes, no attacker, median" "$work/five-honest.yaml"
row "4 honest nodes, no attacker, mean" "$work/four-honest.yaml" --aggregator mean
row "complete graph, median vs Empire -1" "$work/complete.yaml"
echo "one shard alone (p2pnode train): 1/4 shards $(single_mean 4), 1/5 shards $(single_mean 5)"
