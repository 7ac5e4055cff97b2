"""PNG plots of the benchmark (matplotlib, Agg backend): one per task (methods side by side per cell, one
panel per context size), Sachs MMD, and the scale curves."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from condfip.atomic import atomic_savefig
from condfip.bench.report import _cell_key, mean_se, ordered_methods
from condfip.bench.tasks import TASKS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def task_plot(records: list[dict], task: str, methods_order: tuple[str, ...], path: Path) -> Path | None:
    recs = [r for r in records if r.get("part") == "synthetic" and r["task"] == task and r["status"] == "ok"]
    if not recs:
        return None
    plt = _pyplot()
    methods = ordered_methods(recs, methods_order)
    by_n: dict[int, list[str]] = defaultdict(list)
    for cell in sorted({r["cell"] for r in recs}, key=_cell_key):
        by_n[int(cell.rsplit("/n", 1)[1])].append(cell)
    values = defaultdict(list)
    for r in recs:
        values[(r["cell"], r["method"])].append(r["value"])
    ns = sorted(by_n)
    widest = max(len(c) for c in by_n.values())
    fig, axes = plt.subplots(len(ns), 1, figsize=(max(6.0, 1.1 * widest + 2), 3.2 * len(ns)), squeeze=False)
    width = 0.8 / len(methods)
    for ax, n in zip(axes[:, 0], ns):
        cells = by_n[n]
        x = np.arange(len(cells))
        for j, m in enumerate(methods):
            stats = [mean_se(values.get((c, m), [])) for c in cells]
            means = [s[0] for s in stats]
            errs = [0.0 if not np.isfinite(s[1]) else s[1] for s in stats]
            ax.bar(x + (j - (len(methods) - 1) / 2) * width, means, width, yerr=errs, label=m, capsize=2)
        ax.set_xticks(x)
        ax.set_xticklabels([c.rsplit("/n", 1)[0] for c in cells], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("RMSE")
        ax.set_title(f"{task}, context n = {n}")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=min(len(methods), 5))
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def sachs_plot(records: list[dict], methods_order: tuple[str, ...], path: Path) -> Path | None:
    recs = [r for r in records if r.get("part") == "sachs" and r["status"] == "ok"]
    if not recs:
        return None
    plt = _pyplot()
    methods = ordered_methods(recs, ("real", *methods_order))
    stats = [mean_se([r["value"] for r in recs if r["method"] == m]) for m in methods]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    errs = [0.0 if not np.isfinite(s[1]) else s[1] for s in stats]
    ax.bar(methods, [s[0] for s in stats], yerr=errs, capsize=3)
    ax.set_ylabel("squared MMD (unbiased)")
    ax.set_title("Sachs: generated vs held-out rows")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def scale_plot(records: list[dict], path: Path) -> Path | None:
    recs = [r for r in records if r.get("part") == "scale" and r["status"] == "ok"]
    if not recs:
        return None
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for d in sorted({r["d"] for r in recs}):
        rs = sorted((r for r in recs if r["d"] == d), key=lambda r: r["n_context"])
        n = [r["n_context"] for r in rs]
        a1.plot(n, [r["seconds"] for r in rs], marker="o", label=f"d={d}")
        a2.plot(n, [r["peak_rss_mb"] for r in rs], marker="o", label=f"d={d}")
    for ax, label in ((a1, "infer + sample(1000) seconds"), (a2, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_xlabel("dataset rows n (context subsampled to max_context)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("condfip scale")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def write_plots(records: list[dict], out: Path, methods_order: tuple[str, ...]) -> list[str]:
    """Write every plot that has data; returns the file names."""
    made = [task_plot(records, t, methods_order, out / f"{t}.png") for t in TASKS]
    made.append(sachs_plot(records, methods_order, out / "sachs_mmd.png"))
    made.append(scale_plot(records, out / "scale.png"))
    return [p.name for p in made if p is not None]
