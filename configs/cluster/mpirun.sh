#!/bin/bash
# One p2pnode experiment under OpenMPI's mpirun: each rank is one node of the experiment.
#
#   configs/cluster/mpirun.sh HOSTFILE [p2pnode config flags]
#   e.g. configs/cluster/mpirun.sh hosts --byzantine-count 2 --placement spread \
#          --topology complete --rounds 200 --aggregator nnm --attack alie
#
# HOSTFILE is OpenMPI's: one 'host slots=N' line per machine; the experiment has one node per
# slot (or --nodes N), filled host by host, which is how `mpirun --map-by slot` places ranks, so
# rank r runs node r on the host the config names. It writes the nodes config
# (`p2pnode config --hostfile`), starts every node with `mpirun ... --node-id auto` (node id =
# OMPI_COMM_WORLD_RANK) and prints the table `launch` prints. Results go to one folder per run:
#   $P2PNODE_RUNS/<time>/nodes.yaml, metrics/ (each node's JSONL and summary), summary.txt
# Environment: P2PNODE (the binary, default p2pnode on PATH, at the same path on every machine),
# P2PNODE_RUNS (default ./runs; on a file system every machine sees: every node reads nodes.yaml
# there; or copy nodes.yaml to the same path on each machine first),
# P2PNODE_BASE_PORT (default 8880), MPIRUN_ARGS (more mpirun options, e.g. --oversubscribe).
# Run as root, mpirun wants OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -euo pipefail

hostfile=${1:?usage: configs/cluster/mpirun.sh HOSTFILE [p2pnode config flags]}
shift
p2pnode=${P2PNODE:-p2pnode}
run=${P2PNODE_RUNS:-runs}/$(date -u +%Y%m%d-%H%M%S)-$$
mkdir -p "$run/metrics"

# config says "config: N nodes (K Byzantine) on H host(s) written to FILE" (or why it cannot).
msg=$("$p2pnode" config --hostfile "$hostfile" --base-port "${P2PNODE_BASE_PORT:-8880}" --out "$run/nodes.yaml" "$@" 2>&1) ||
  { echo "$msg" >&2; exit 2; }
nodes=${msg#config: }
nodes=${nodes%% *}
echo "p2pnode: $nodes nodes over $hostfile, results in $run"

status=0  # mpirun's, then the summary's
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of options
mpirun --hostfile "$hostfile" --map-by slot -np "$nodes" ${MPIRUN_ARGS:-} \
  "$p2pnode" mesh --config "$run/nodes.yaml" --node-id auto --metrics-dir "$run/metrics" || status=$?
"$p2pnode" summary "$run/metrics" | tee "$run/summary.txt" || status=$((status ? status : 1))
exit "$status"
