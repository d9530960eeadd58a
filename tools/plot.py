#!/usr/bin/env python3
"""Figures of a p2pnode sweep or run, with matplotlib (Debian's python3-matplotlib).

Usage: plot.py DIR [--format png|svg|both]   (what `p2pnode plot DIR` runs)

A sweep's folder (results.json): accuracy_vs_round, heatmap_aggregator_attack and
heatmap_<a>_<b> (f x heterogeneity, as ByzFL draws them) where the grid has those axes, and
time_per_round. A run's metrics folder (node-<id>.jsonl): curves, per node. Prints each file.
"""
import glob
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
                     "figure.dpi": 110})
FORMATS = ["png"]
HETEROGENEITY = ["data.alpha", "data.gamma", "data.classes_per_node", "data.partition"]


def save(fig, path):
    if not fig.get_constrained_layout():
        fig.tight_layout()
    for fmt in FORMATS:
        out = f"{path}.{fmt}"
        fig.savefig(out)
        print(f"plot: {out}")
    plt.close(fig)


def rows_of(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def node_types(run):
    types = {}
    for p in glob.glob(os.path.join(run, "node-*.summary.json")):
        s = json.load(open(p))
        types[s["node"]] = s["type"]
    return types


def run_curves(run):
    """{node: [(round, acc)]}, {node: [(round, train_loss)]}, {node: type}, time split (compute, wait, aggregate) ms."""
    types = node_types(run)
    acc, loss, split = {}, {}, [0.0, 0.0, 0.0]
    rounds = 0
    for p in sorted(glob.glob(os.path.join(run, "node-*.jsonl"))):
        node = int(os.path.basename(p)[5:-6])
        rows = rows_of(p)
        acc[node] = [(r["round"], r["acc"]) for r in rows if r.get("acc") is not None]
        loss[node] = [(r["round"], r["train_loss"]) for r in rows
                      if r.get("train_loss") is not None and math.isfinite(r["train_loss"])]
        if types.get(node, "honest") == "honest":
            for i, k in enumerate(["seconds_compute", "seconds_wait", "seconds_aggregate"]):
                split[i] += sum(r.get(k, 0.0) for r in rows) * 1e3
            rounds += len(rows)
    split = [s / rounds if rounds else 0.0 for s in split]
    return acc, loss, types, split


def plot_run(run):
    acc, loss, types, _ = run_curves(run)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for node in sorted(loss):
        kind = types.get(node, "honest")
        style = "-" if kind == "honest" else ":"
        if loss[node]:
            a.plot(*zip(*loss[node]), style, label=f"node {node} ({kind})", linewidth=1)
        if acc[node]:
            b.plot(*zip(*acc[node]), style + "o", label=f"node {node} ({kind})", markersize=3)
    a.set(title="Training loss per node", xlabel="round", ylabel="cross-entropy on its batch")
    b.set(title="Test accuracy per node", xlabel="round", ylabel="accuracy", ylim=(0, 1))
    a.legend()
    b.legend()
    save(fig, os.path.join(run, "curves"))


def honest_series(run):
    """Per eval round: the honest nodes' mean and worst accuracy."""
    acc, _, types, split = run_curves(run)
    honest = [n for n in acc if types.get(n, "honest") == "honest" and acc[n]]
    if not honest:
        return [], [], [], split
    rounds = sorted(set.intersection(*[set(r for r, _ in acc[n]) for n in honest]))
    values = {n: dict(acc[n]) for n in honest}
    mean = [sum(values[n][r] for n in honest) / len(honest) for r in rounds]
    worst = [min(values[n][r] for n in honest) for r in rounds]
    return rounds, mean, worst, split


def label_of(axes, at, skip=()):
    return ", ".join(f"{axes[k]} {v}" for k, v in at.items() if k not in skip) or "all runs"


def plot_sweep(out):
    rows = json.load(open(os.path.join(out, "results.json")))
    done = [r for r in rows if r["status"] == "done"]
    if not done:
        print("plot: no finished run to draw")
        return
    # A rule and the pre-aggregators before it are one defence ("nnm + trimmed-mean"): one row of
    # the heatmaps, not a panel of its own.
    if {"robust.aggregator", "robust.pre_aggregators"} <= done[0]["at"].keys():
        for r in done:
            at = {}
            for k, v in r["at"].items():
                if k == "robust.aggregator":
                    pre = r["at"]["robust.pre_aggregators"]
                    at["robust.defence"] = v if pre == "none" else f"{pre} + {v}"
                elif k != "robust.pre_aggregators":
                    at[k] = v
            r["at"] = at
    keys = list(done[0]["at"].keys())
    short = {k: k.split(".", 1)[1] for k in keys}
    rule = "robust.defence" if "robust.defence" in keys else "robust.aggregator"
    # 1. accuracy vs round: mean over seeds (band: min..max of the seeds), worst honest node dashed.
    # Past 10 curves, one panel per value of the axes other than the rule's (a legend of 45
    # entries on one axes cannot be read).
    groups = {}
    for r in done:
        groups.setdefault(r["group"], []).append(r)
    others = [k for k in keys if k != rule] if rule in keys and len(groups) > 10 else []
    panels = list(dict.fromkeys(tuple(runs[0]["at"][k] for k in others) for runs in groups.values()))
    cols = min(3, len(panels))
    rows_n = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(9 if cols == 1 else 5.2 * cols, 5.5 if cols == 1 else 3.8 * rows_n),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    colours = plt.cm.tab10.colors if others else plt.cm.tab20.colors
    line_of = {}  # rule value -> colour, the same in every panel
    splits = {}
    for i, (g, runs) in enumerate(groups.items()):
        series = [honest_series(os.path.join(out, "runs", r["name"])) for r in runs]
        series = [s for s in series if s[0]]
        if not series:
            continue
        at = runs[0]["at"]
        panel = panels.index(tuple(at[k] for k in others))
        ax = axes[panel // cols][panel % cols]
        rounds = series[0][0]
        n = min(len(s[0]) for s in series)
        rounds = rounds[:n]
        means = [[s[1][j] for s in series] for j in range(n)]
        worsts = [[s[2][j] for s in series] for j in range(n)]
        if others:
            c = line_of.setdefault(at[rule], colours[len(line_of) % len(colours)])
            label = at[rule]
        else:
            c = colours[i % len(colours)]
            label = label_of(short, at)
        m = [sum(v) / len(v) for v in means]
        ax.plot(rounds, m, "-o", color=c, markersize=3, label=label)
        ax.fill_between(rounds, [min(v) for v in means], [max(v) for v in means], color=c, alpha=0.15)
        ax.plot(rounds, [sum(v) / len(v) for v in worsts], "--", color=c, linewidth=1)
        splits[g] = ([sum(s[3][k] for s in series) / len(series) for k in range(3)], at)
    for p_i, panel in enumerate(panels):
        ax = axes[p_i // cols][p_i % cols]
        ax.set(ylim=(0, 1))
        if others:
            ax.set_title(label_of(short, dict(zip(others, panel))), fontsize=10)
        if p_i // cols == rows_n - 1:
            ax.set_xlabel("round")
        if p_i % cols == 0:
            ax.set_ylabel("test accuracy")
    for p_i in range(len(panels), rows_n * cols):
        axes[p_i // cols][p_i % cols].set_visible(False)
    title = "Honest test accuracy (mean over seeds, band: seeds' range; dashed: worst honest node)"
    if others:
        fig.suptitle(title)
        axes[0][0].legend(loc="lower right", fontsize=8, title=short[rule], title_fontsize=8)
    else:
        axes[0][0].set_title(title)
        axes[0][0].legend(loc="lower right", ncol=2 if len(groups) > 8 else 1)
    save(fig, os.path.join(out, "accuracy_vs_round"))

    # 2. heatmaps of the final worst-honest accuracy, mean over seeds (and over any other axes).
    def heatmap(rk, ck, name, title):
        rvals = list(dict.fromkeys(r["at"][rk] for r in done))
        cvals = list(dict.fromkeys(r["at"][ck] for r in done))
        others = [k for k in keys if k not in (rk, ck)]
        panels = list(dict.fromkeys(tuple(r["at"][k] for k in others) for r in done))
        width = 2.2 + 1.3 * len(cvals)
        fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels) + 1.2, max(3.6, 2.2 + 0.6 * len(rvals))),
                                 squeeze=False, layout="constrained")
        for ax, panel in zip(axes[0], panels):
            grid = [[None] * len(cvals) for _ in rvals]
            for i, rv in enumerate(rvals):
                for j, cv in enumerate(cvals):
                    v = [r["acc_worst"] for r in done if r["at"][rk] == rv and r["at"][ck] == cv and
                         tuple(r["at"][k] for k in others) == panel]
                    grid[i][j] = sum(v) / len(v) if v else float("nan")
            im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            for i in range(len(rvals)):
                for j in range(len(cvals)):
                    if math.isfinite(grid[i][j]):
                        ax.text(j, i, f"{grid[i][j]:.2f}", ha="center", va="center",
                                color="white" if grid[i][j] < 0.5 else "black", fontsize=10)
            ax.set_xticks(range(len(cvals)), cvals, rotation=30, ha="right")
            ax.set_yticks(range(len(rvals)), rvals)
            ax.set(xlabel=short[ck], ylabel=short[rk])
            if others:
                ax.set_title(label_of(short, dict(zip(others, panel))))
        fig.colorbar(im, ax=axes[0].tolist(), label="accuracy", shrink=0.95)
        fig.suptitle(title)
        save(fig, os.path.join(out, name))

    if rule in keys and "robust.attack" in keys:
        heatmap(rule, "robust.attack", "heatmap_aggregator_attack",
                "Worst honest node's final accuracy (mean over seeds)")
    for h in HETEROGENEITY:
        if "robust.f" in keys and h in keys:
            heatmap("robust.f", h, f"heatmap_f_{short[h]}", "Worst honest node's accuracy: f against heterogeneity")

    # 3. time per round, split into compute, wait and aggregate (honest nodes, mean over runs).
    if splits and others:  # many points: one bar per rule, averaged over the other axes
        by_rule = {}
        for part, at in splits.values():
            by_rule.setdefault(at[rule], []).append(part)
        splits = {v: ([sum(p[k] for p in parts) / len(parts) for k in range(3)], {rule: v})
                  for v, parts in by_rule.items()}
    if splits:
        names = list(splits)
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 3), 4.5))
        bottom = [0.0] * len(names)
        for k, (part, colour) in enumerate(zip(["compute", "wait", "aggregate"], ["#4C72B0", "#DD8452", "#55A868"])):
            v = [splits[g][0][k] for g in names]
            ax.bar(range(len(names)), v, bottom=bottom, label=part, color=colour)
            bottom = [b + x for b, x in zip(bottom, v)]
        ax.set_xticks(range(len(names)), [label_of(short, splits[g][1]) for g in names], rotation=35, ha="right",
                      fontsize=8)
        ax.set(title="Time per round of an honest node", ylabel="ms per round")
        ax.legend()
        save(fig, os.path.join(out, "time_per_round"))


def main():
    global FORMATS
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    if "--format" in args:
        i = args.index("--format")
        FORMATS = {"png": ["png"], "svg": ["svg"], "both": ["png", "svg"]}[args[i + 1]]
        del args[i:i + 2]
    d = args[0]
    if os.path.exists(os.path.join(d, "results.json")):
        plot_sweep(d)
    elif glob.glob(os.path.join(d, "node-*.jsonl")):
        plot_run(d)
    else:
        sys.exit(f"plot: {d}: neither a sweep folder (results.json) nor a run's metrics (node-<id>.jsonl)")


if __name__ == "__main__":
    main()
