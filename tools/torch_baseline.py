#!/usr/bin/env python3
"""PyTorch baseline for tools/bench-step.sh: the reference's SmallCnn on the same shapes.

Measures, on one thread, the median of one SGD step (forward + backward + update, batch 64),
of forward + backward alone, and of an evaluation of the whole test set, then prints them in
the same format as bench-step. Optional: needs Debian's python3-torch (run with
/usr/bin/python3 when another python3 comes first on PATH). Not part of CI.

Usage: tools/torch_baseline.py [STEPS] [EVALS] [DATA_ROOT]
       tools/torch_baseline.py train ROUNDS [DATA_ROOT]   # accuracy of `p2pnode train --rounds ROUNDS`'s run
"""
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def read_idx(root, name):
    for path in (os.path.join(root, name), os.path.join(root, name + ".gz")):
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            magic = int.from_bytes(data[:4], "big")
            dims = magic & 0xFF
            shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise FileNotFoundError(os.path.join(root, name))


def train_run(rounds, root):
    """The run `p2pnode train` does: batch 64, lr 0.05, plain SGD, reshuffled epochs."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train_x = torch.from_numpy(read_idx(root, "train-images-idx3-ubyte").astype(np.float32) / 255.0).unsqueeze(1)
    train_y = torch.from_numpy(read_idx(root, "train-labels-idx1-ubyte").astype(np.int64))
    test_x = torch.from_numpy(read_idx(root, "t10k-images-idx3-ubyte").astype(np.float32) / 255.0).unsqueeze(1)
    test_y = torch.from_numpy(read_idx(root, "t10k-labels-idx1-ubyte").astype(np.int64))
    model = SmallCnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    order = torch.randperm(len(train_x))
    pos = 0
    for _ in range(rounds):
        if pos + 64 > len(order):
            order, pos = torch.randperm(len(train_x)), 0
        idx = order[pos:pos + 64]
        pos += 64
        opt.zero_grad()
        F.cross_entropy(model(train_x[idx]), train_y[idx]).backward()
        opt.step()
    with torch.no_grad():
        logits = model(test_x)
        loss = F.cross_entropy(logits, test_y).item()
        acc = (logits.argmax(1) == test_y).float().mean().item()
    print(f"PyTorch {torch.__version__}: {rounds} rounds, batch 64, lr 0.05: Final: loss={loss:.4f}, acc={acc:.4f}")


def default_root():
    return "./data" if os.path.exists("./data/train-images-idx3-ubyte.gz") else "/usr/share/datasets/fashion-mnist"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        train_run(int(sys.argv[2]) if len(sys.argv) > 2 else 300, sys.argv[3] if len(sys.argv) > 3 else default_root())
        return
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    evals = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    root = sys.argv[3] if len(sys.argv) > 3 else default_root()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train_x = read_idx(root, "train-images-idx3-ubyte")
    train_y = read_idx(root, "train-labels-idx1-ubyte")
    test_x = torch.from_numpy(read_idx(root, "t10k-images-idx3-ubyte").astype(np.float32) / 255.0).unsqueeze(1)
    test_y = torch.from_numpy(read_idx(root, "t10k-labels-idx1-ubyte").astype(np.int64))

    model = SmallCnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    step_ms, fb_ms = [], []
    for i in range(steps + 10):
        idx = rng.choice(len(train_x), 64, replace=False)
        x = torch.from_numpy(train_x[idx].astype(np.float32) / 255.0).unsqueeze(1)
        y = torch.from_numpy(train_y[idx].astype(np.int64))
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if i >= 10:
            fb_ms.append((t1 - t0) * 1e3)
            step_ms.append((t2 - t0) * 1e3)

    eval_s = []
    acc = 0.0
    with torch.no_grad():
        for _ in range(evals):
            t0 = time.perf_counter()
            correct = 0
            for start in range(0, len(test_x), 100):
                logits = model(test_x[start:start + 100])
                F.cross_entropy(logits, test_y[start:start + 100], reduction="sum")
                correct += (logits.argmax(1) == test_y[start:start + 100]).sum().item()
            eval_s.append(time.perf_counter() - t0)
            acc = correct / len(test_x)

    print(f"PyTorch {torch.__version__} SmallCnn, batch 64, 1 thread, data {root}")
    print(f"step (forward+backward+update): median {statistics.median(step_ms):.3f} ms over {steps} steps")
    print(f"forward+backward:               median {statistics.median(fb_ms):.3f} ms")
    print(f"evaluation of {len(test_x)} test images:  median {statistics.median(eval_s):.3f} s over {evals} runs"
          f" (acc {acc:.4f})")


if __name__ == "__main__":
    main()
