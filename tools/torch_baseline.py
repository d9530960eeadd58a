#!/usr/bin/env python3
"""PyTorch baseline for tools/bench-step.sh: the reference's SmallCnn on the same shapes.

Measures, on one thread, the median of one SGD step (forward + backward + update, batch 64),
of forward + backward alone, and of an evaluation of the whole test set, then prints them in
the same format as bench-step. Optional: needs Debian's python3-torch (run with
/usr/bin/python3 when another python3 comes first on PATH). Not part of CI.

Usage: tools/torch_baseline.py [STEPS] [EVALS] [DATA_ROOT]
       tools/torch_baseline.py train ROUNDS [DATA_ROOT]   # accuracy of `p2pnode train --rounds ROUNDS`'s run
       tools/torch_baseline.py fidelity MODEL SEED STEPS C1,C2 idx|cifar10 ROOT   # tools/model-fidelity.sh
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


class LogReg(nn.Module):
    def __init__(self, inputs, classes):
        super().__init__()
        self.fc = nn.Linear(inputs, classes)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


class Mlp(nn.Module):  # ByzFL's fc_mnist with --hidden 100
    def __init__(self, inputs, classes, hidden=100):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class CnnMnist(nn.Module):  # ByzFL's cnn_mnist (log_softmax + NLL is cross-entropy on logits)
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 20, 5, 1)
        self.c2 = nn.Conv2d(20, 50, 5, 1)
        self.f1 = nn.Linear(800, 500)
        self.f2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2, 2)
        return self.f2(F.relu(self.f1(torch.flatten(x, 1))))


class CnnCifar(nn.Module):  # ByzFL's cnn_cifar
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 20, 5, padding=2)
        self.conv2 = nn.Conv2d(20, 100, 5, padding=2)
        self.conv3 = nn.Conv2d(100, 200, 5, padding=2)
        self.fc1 = nn.Linear(200 * 4 * 4, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2, 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc3(F.relu(self.fc2(x)))


def make_model(name, shape, classes):
    inputs = shape[0] * shape[1] * shape[2]
    return {"small-cnn": lambda: SmallCnn(), "logreg": lambda: LogReg(inputs, classes),
            "mlp": lambda: Mlp(inputs, classes), "cnn-mnist": lambda: CnnMnist(), "cnn-cifar": lambda: CnnCifar()}[name]()


def read_cifar(root, names):
    data = b"".join(open(os.path.join(root, n), "rb").read() for n in names)
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0]


def fidelity(model_name, seed, steps, checkpoints, dataset, root, batch=64, lr=0.05):
    """One model trained alone: batch 64, lr 0.05, plain SGD, reshuffled epochs (p2pnode train's run);
    test accuracy at each checkpoint step and the median time of a step (forward, backward, update)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    if dataset == "cifar10":
        tx, ty = read_cifar(root, [f"data_batch_{b}.bin" for b in range(1, 6)])
        vx, vy = read_cifar(root, ["test_batch.bin"])
    else:
        tx = read_idx(root, "train-images-idx3-ubyte")[:, None]
        ty = read_idx(root, "train-labels-idx1-ubyte")
        vx = read_idx(root, "t10k-images-idx3-ubyte")[:, None]
        vy = read_idx(root, "t10k-labels-idx1-ubyte")
    train_x = torch.from_numpy(tx.astype(np.float32) / 255.0)
    train_y = torch.from_numpy(ty.astype(np.int64))
    test_x = torch.from_numpy(vx.astype(np.float32) / 255.0)
    test_y = torch.from_numpy(vy.astype(np.int64))
    classes = int(max(train_y.max(), test_y.max())) + 1
    model = make_model(model_name, tuple(train_x.shape[1:]), max(classes, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    order, pos, step_ms, accs = torch.randperm(len(train_x)), 0, [], {}
    for step in range(1, steps + 1):
        if pos + batch > len(order):
            order, pos = torch.randperm(len(train_x)), 0
        idx = order[pos:pos + batch]
        pos += batch
        x, y = train_x[idx], train_y[idx]
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        step_ms.append((time.perf_counter() - t0) * 1e3)
        if step in checkpoints:
            with torch.no_grad():
                correct = sum((model(test_x[s:s + 100]).argmax(1) == test_y[s:s + 100]).sum().item()
                              for s in range(0, len(test_x), 100))
            accs[step] = correct / len(test_x)
    print(f"torch {model_name} seed {seed}: " + " ".join(f"acc@{k} {v:.4f}" for k, v in sorted(accs.items())) +
          f" step_ms {statistics.median(step_ms[10:]):.3f}")


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
    if len(sys.argv) > 1 and sys.argv[1] == "fidelity":  # fidelity MODEL SEED STEPS C1,C2 DATASET ROOT
        fidelity(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), {int(c) for c in sys.argv[5].split(",")},
                 sys.argv[6], sys.argv[7])
        return
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
