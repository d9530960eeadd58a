#!/usr/bin/env python3
"""Each model trained alone, p2pnode against PyTorch on one thread, same hyper-parameters.

Runs `p2pnode train --model M` and tools/torch_baseline.py's same run (batch 64, lr 0.05, plain
SGD, reshuffled epochs) for 3 seeds each, alternating the two; prints test accuracy after 300
and 1,000 steps (mean and seed-to-seed spread, and the gap between the means in PyTorch's standard
deviations) and the median time of a step, and the ratio.
Fashion-MNIST for the 28 x 28 models; cnn-cifar on a synthetic CIFAR-format set written here
(a bright square per class over noise: CIFAR-10 cannot be downloaded).
Needs Debian's python3-torch and python3-numpy. Not part of CI (minutes of compute).

Like tools/bench-step.sh it unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for both sides (set on
some of these machines, they slow OpenBLAS's sgemm by ~40%; a fresh Debian machine has neither).
SEEDS=N in the environment runs seeds 0..N-1 instead of 3.

Usage: [SEEDS=N] /usr/bin/python3 tools/model_fidelity.py [BUILD_DIR] [MODELS...]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build")
MODELS = sys.argv[2:] or ["small-cnn", "logreg", "mlp", "cnn-mnist", "cnn-cifar"]
SEEDS = list(range(int(os.environ.get("SEEDS", "3"))))
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)
FASHION = "/usr/share/datasets/fashion-mnist"


def synthetic_cifar(root, per_file=2000):
    rng = np.random.default_rng(0)
    def records(n, first):
        out = np.empty((n, 3073), dtype=np.uint8)
        labels = (np.arange(first, first + n) % 10).astype(np.uint8)
        img = rng.integers(0, 128, size=(n, 3, 32, 32), dtype=np.uint8)
        for k in range(10):
            sel = labels == k
            y, x = 4 + 8 * (k // 4), 4 + 8 * (k % 4)
            img[sel, k % 3, y:y + 8, x:x + 8] = np.minimum(255, img[sel, k % 3, y:y + 8, x:x + 8].astype(int) + 100)
        out[:, 0] = labels
        out[:, 1:] = img.reshape(n, -1)
        return out.tobytes()
    for b in range(1, 6):
        open(os.path.join(root, f"data_batch_{b}.bin"), "wb").write(records(per_file, (b - 1) * per_file))
    open(os.path.join(root, "test_batch.bin"), "wb").write(records(per_file, 5 * per_file))


def ours(model, seed, steps, dataset, root, tmp):
    metrics = os.path.join(tmp, f"{model}-{seed}.jsonl")
    subprocess.run([os.path.join(BUILD, "p2pnode"), "train", "--model", model, "--seed", str(seed), "--rounds",
                    str(steps), "--eval-every", "300", "--dataset", dataset, "--data-root", root, "--metrics", metrics],
                   check=True, capture_output=True)
    rows = [json.loads(line) for line in open(metrics)]
    acc = {r["round"]: r["acc"] for r in rows if r.get("acc") is not None}
    step_ms = statistics.median(r["seconds_compute"] * 1e3 for r in rows[10:])
    return acc, step_ms


def theirs(model, seed, steps, checkpoints, dataset, root):
    out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_baseline.py"), "fidelity", model, str(seed),
                          str(steps), ",".join(map(str, checkpoints)), dataset, root],
                         check=True, capture_output=True, text=True).stdout.split()
    acc = {int(out[i][4:]): float(out[i + 1]) for i in range(len(out)) if out[i].startswith("acc@")}
    return acc, float(out[out.index("step_ms") + 1])


def gap(ours_acc, theirs_acc):
    """Our mean accuracy minus PyTorch's, in PyTorch's seed-to-seed standard deviations."""
    return (statistics.mean(ours_acc) - statistics.mean(theirs_acc)) / statistics.stdev(theirs_acc)


def spread(values):
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main():
    tmp = tempfile.mkdtemp(prefix="p2pnode-fidelity-")
    cifar = os.path.join(tmp, "cifar")
    os.makedirs(cifar)
    synthetic_cifar(cifar)
    print(f"model      steps  p2pnode acc ({len(SEEDS)} seeds)  PyTorch acc ({len(SEEDS)} seeds)  p2pnode ms/step  "
          "PyTorch ms/step  ratio")
    for model in MODELS:
        dataset, root = ("cifar10", cifar) if model == "cnn-cifar" else ("idx", FASHION)
        steps, checkpoints = 1000, [300, 1000]
        a, b, ta, tb = {c: [] for c in checkpoints}, {c: [] for c in checkpoints}, [], []
        for seed in SEEDS:  # A/B alternated
            acc, ms = ours(model, seed, steps, dataset, root, tmp)
            for c in checkpoints:
                a[c].append(acc[c])
            ta.append(ms)
            acc, ms = theirs(model, seed, steps, checkpoints, dataset, root)
            for c in checkpoints:
                b[c].append(acc[c])
            tb.append(ms)
        for c in checkpoints:
            print(f"{model:<10} {c:>5}  {spread(a[c]):<21}  {spread(b[c]):<21}  "
                  f"{statistics.median(ta):>15.2f}  {statistics.median(tb):>15.2f}  "
                  f"{statistics.median(ta) / statistics.median(tb):.2f}  gap {gap(a[c], b[c]):+.2f} sd", flush=True)


if __name__ == "__main__":
    main()
