#!/usr/bin/env bash
# Times one SGD step and a test-set evaluation of SmallCnn with p2pnode, and with PyTorch
# (tools/torch_baseline.py) when Debian's python3-torch is installed, side by side, and prints
# the ratios. Usage: tools/bench-step.sh [STEPS=300] [EVALS=3] [ROUNDS=3]
#
# This command unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for itself: on some of these
# machines they are set and cost ~40% of sgemm speed. Tests and CI leave them alone.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-300}
evals=${2:-3}
rounds=${3:-3}
[ -x build/tools/bench-step ] || { meson setup build --wrap-mode=nodownload >/dev/null; }
meson compile -C build >/dev/null
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
echo "bench-step: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this command"

torch_python=""
for py in /usr/bin/python3 python3; do
  if "$py" -c "import torch" 2>/dev/null; then torch_python=$py; break; fi
done

ours_step=(); ours_eval=(); torch_step=(); torch_eval=()
field() { awk -v key="$1" '$0 ~ key { for (i = 1; i <= NF; i++) if ($i == "median") { print $(i + 1); exit } }'; }
for r in $(seq "$rounds"); do
  out=$(build/tools/bench-step "$steps" "$evals")
  echo "$out"
  ours_step+=("$(echo "$out" | field '^step')")
  ours_eval+=("$(echo "$out" | field '^evaluation')")
  if [ -n "$torch_python" ]; then
    out=$("$torch_python" tools/torch_baseline.py "$steps" "$evals")
    echo "$out"
    torch_step+=("$(echo "$out" | field '^step')")
    torch_eval+=("$(echo "$out" | field '^evaluation')")
  fi
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
s=$(median "${ours_step[@]}"); e=$(median "${ours_eval[@]}")
echo
echo "p2pnode: step $s ms, eval $e s (medians of $rounds rounds)"
if [ -n "$torch_python" ]; then
  ts=$(median "${torch_step[@]}"); te=$(median "${torch_eval[@]}")
  echo "PyTorch: step $ts ms, eval $te s"
  awk -v s="$s" -v ts="$ts" -v e="$e" -v te="$te" 'BEGIN { printf "ratio p2pnode/PyTorch: step %.2f, eval %.2f\n", s / ts, e / te }'
else
  echo "PyTorch: not installed (apt-get install python3-torch to compare)"
fi
