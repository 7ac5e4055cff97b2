"""``condfip demo``: the Sachs et al. (2005) flow-cytometry data, end to end, offline.

Ships inside the package (``condfip/data``): the 853 observational cells (cd3/cd28 condition) x 11
phosphoproteins and the 17-edge consensus signalling DAG. The demo log-transforms the intensities, splits the
cells at random into a context half and a held-out half, infers the SCM from the context half (one forward pass
of the shipped network, plus the default kernel mechanisms: a closed-form regression per protein), reports per
protein how well its mechanism explains the held-out cells, generates observational samples and samples under
do(PKC = its 10th percentile) and do(PKC = its 90th percentile), estimates the shift of every protein between the
two with a bootstrap interval, and writes plots and tables into the output folder. All values are natural logs of
the measured intensities.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from condfip.atomic import atomic_savefig, atomic_write_text
from condfip.errors import InputError

DATA_FILE = "sachs.csv"
GRAPH_FILE = "sachs-graph.csv"
TARGET = "PKC"
LOW_Q, HIGH_Q = 0.10, 0.90


def _data_path(name: str) -> Path:
    return Path(str(resources.files("condfip") / "data" / name))


def sachs_data() -> pd.DataFrame:
    """The 853 observational cells x 11 proteins of Sachs et al. (2005), raw intensities."""
    from condfip.inputs import read_data

    return read_data(_data_path(DATA_FILE))


def sachs_graph() -> nx.DiGraph:
    """The 17-edge consensus signalling DAG over the 11 proteins."""
    from condfip.inputs import read_graph

    return read_graph(_data_path(GRAPH_FILE), nodes=list(sachs_data().columns))


def sanitise(name: str, taken: set[str] | None = None) -> str:
    """A file-name-safe version of a node name ("p44/42" -> "p44_42"), unique within ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "node"
    stem, k = base, 2
    while taken is not None and stem.lower() in taken:
        stem, k = f"{base}-{k}", k + 1
    if taken is not None:
        taken.add(stem.lower())
    return stem


# --------------------------------------------------------------------------------------------------
# plots (matplotlib's Agg canvas directly: no pyplot state, no display needed)


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("the demo's plots need matplotlib; fix: pip install 'condfip[plot]'") from None
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _grid(count: int) -> tuple[int, int]:
    cols = min(4, count)
    return (count + cols - 1) // cols, cols


def _hist_pair(ax, a: np.ndarray, b: np.ndarray, labels: tuple[str, str], colors: tuple[str, str]):
    lo = min(np.quantile(a, 0.005), np.quantile(b, 0.005))
    hi = max(np.quantile(a, 0.995), np.quantile(b, 0.995))
    bins = np.linspace(lo, hi, 31) if hi > lo else 30
    ax.hist(a, bins=bins, density=True, alpha=0.5, color=colors[0], label=labels[0], histtype="stepfilled")
    ax.hist(b, bins=bins, density=True, alpha=0.5, color=colors[1], label=labels[1], histtype="stepfilled")


def plot_marginals(observed: pd.DataFrame, generated: pd.DataFrame, path: Path) -> Path:
    rows, cols = _grid(observed.shape[1])
    fig = _figure(3.2 * cols, 2.5 * rows)
    for k, node in enumerate(observed.columns):
        ax = fig.add_subplot(rows, cols, k + 1)
        _hist_pair(ax, observed[node].to_numpy(), generated[node].to_numpy(),
                   ("held-out cells", "generated"), ("tab:gray", "tab:blue"))
        ax.set_title(node, fontsize=10)
        ax.set_xlabel("log intensity", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle("Observed (held-out) vs generated marginals, zero-shot SCM", fontsize=11)
    fig.tight_layout()
    atomic_savefig(fig, path)
    return path


def plot_intervention(low: pd.DataFrame, high: pd.DataFrame, nodes: list[str], labels: tuple[str, str],
                      path: Path, title: str) -> Path:
    rows, cols = _grid(len(nodes))
    fig = _figure(3.2 * cols, 2.5 * rows)
    for k, node in enumerate(nodes):
        ax = fig.add_subplot(rows, cols, k + 1)
        _plot_shift(ax, low[node].to_numpy(), high[node].to_numpy(), labels, node)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    atomic_savefig(fig, path)
    return path


def _plot_shift(ax, low: np.ndarray, high: np.ndarray, labels: tuple[str, str], node: str):
    _hist_pair(ax, low, high, labels, ("tab:blue", "tab:red"))
    ax.axvline(low.mean(), color="tab:blue", lw=1.5)
    ax.axvline(high.mean(), color="tab:red", lw=1.5)
    ax.set_title(f"{node}: mean shift {high.mean() - low.mean():+.3f}", fontsize=10)
    ax.set_xlabel("log intensity", fontsize=8)
    ax.tick_params(labelsize=7)


def plot_one_shift(low: np.ndarray, high: np.ndarray, labels: tuple[str, str], node: str, path: Path) -> Path:
    fig = _figure(4.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    _plot_shift(ax, low, high, labels, node)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path)
    return path


def plot_effects(table: pd.DataFrame, path: Path, title: str) -> Path:
    fig = _figure(6.0, 0.4 * len(table) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(table))[::-1]
    err = np.vstack([table["effect"] - table["low"], table["high"] - table["effect"]])
    ax.errorbar(table["effect"], y, xerr=np.clip(err, 0, None), fmt="o", color="tab:red", capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, table.index.tolist(), fontsize=9)
    ax.set_xlabel("shift of the mean log intensity (bootstrap interval)", fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    return path


def plot_graph(graph: nx.DiGraph, path: Path, highlight: str, downstream: set[str]) -> Path:
    fig = _figure(7.5, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    layers = {node: depth for depth, layer in enumerate(nx.topological_generations(graph)) for node in layer}
    layered = nx.DiGraph(graph)
    nx.set_node_attributes(layered, layers, "layer")
    pos = nx.multipartite_layout(layered, subset_key="layer", align="horizontal", scale=1.0)
    pos = {node: (x, -y) for node, (x, y) in pos.items()}  # causes on top
    colors = ["tab:orange" if n == highlight else "#f4a6a6" if n in downstream else "#cfe2f3" for n in graph]
    nx.draw_networkx_edges(graph, pos, ax=ax, arrowsize=14, edge_color="#555555", node_size=1500,
                           connectionstyle="arc3,rad=0.08")
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colors, node_size=1500, edgecolors="#333333")
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=8)
    ax.set_title(f"Consensus signalling DAG (Sachs et al. 2005): {highlight} and its downstream proteins",
                 fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    atomic_savefig(fig, path)
    return path


# --------------------------------------------------------------------------------------------------
# the demo


def run_demo(out: str | Path = "demo-out", *, weights: str | Path | None = None, bootstrap: int = 20,
             n_samples: int = 1000, bootstrap_samples: int = 400, seed: int = 0,
             echo: Callable[[str], object] = print) -> dict[str, Path]:
    """Run the demo, write plots and tables into ``out``; returns the written files by name.

    ``n_samples`` rows are generated per distribution; the effect intervals come from ``bootstrap``
    re-inferences on resampled context cells with ``bootstrap_samples`` rows each."""
    from condfip.effects import MIN_REPLICATES, bootstrap_replicates
    from condfip.inference import load_pretrained
    from condfip.memory import check_memory

    if 0 < bootstrap < MIN_REPLICATES:
        raise InputError(f"bootstrap={bootstrap} replicates are too few for an interval; fix: pass bootstrap >= "
                         f"{MIN_REPLICATES}, or 0 for none")
    start = time.perf_counter()
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output folder {str(out)!r} ({err.strerror or err}); "
                         f"fix: pass --out a writable folder") from None
    raw, graph = sachs_data(), sachs_graph()
    data = np.log(raw)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    half = len(data) // 2
    context, heldout = data.iloc[np.sort(order[:half])], data.iloc[np.sort(order[half:])]
    echo(f"Sachs et al. (2005): {raw.shape[0]} cells x {raw.shape[1]} proteins (cd3/cd28, observational), "
         f"{graph.number_of_edges()}-edge consensus DAG; natural log of the intensities")
    echo(f"context: {len(context)} cells, held out: {len(heldout)} cells")

    model = load_pretrained(weights)
    check_memory(len(context), data.shape[1], model.network.config)
    t0 = time.perf_counter()
    scm = model.infer(context, graph)
    _ = scm.kernel  # the default kernel mechanisms, fitted here so that the time below includes them
    echo(f"inferred the SCM in {time.perf_counter() - t0:.2f} s (one forward pass of the network, then a "
         f"closed-form kernel regression per protein; no training)")

    rep = scm.report(heldout)
    table = rep.table
    echo("\nHow well each protein's mechanism explains the held-out cells (R^2; roots have no mechanism):")
    for node, row in table.iterrows():
        if row["parents"]:
            verdict = "ok" if row["independent"] else "noise depends on parents"
            echo(f"  {node:>9}  R^2 {row['r2']:+.2f}   parents {int(row['parents'])}   {verdict}")
        else:
            echo(f"  {node:>9}  root")
    for warning in rep.warnings:
        echo(f"  warning: {warning}")

    files: dict[str, Path] = {}
    taken: set[str] = set()
    generated = scm.sample(n_samples, seed=seed)
    low_value = float(data[TARGET].quantile(LOW_Q))
    high_value = float(data[TARGET].quantile(HIGH_Q))
    low = scm.do({TARGET: low_value}).sample(n_samples, seed=seed + 1)
    high = scm.do({TARGET: high_value}).sample(n_samples, seed=seed + 1)
    downstream = [n for n in data.columns if n in nx.descendants(graph, TARGET)]
    # the same noise rows (seed + 1) under both interventions: the point estimate of every shift
    estimate = high.to_numpy().mean(axis=0) - low.to_numpy().mean(axis=0)
    replicates = bootstrap_replicates(scm, {TARGET: high_value}, {TARGET: low_value}, n=bootstrap_samples,
                                      bootstrap=bootstrap, rng=np.random.default_rng(seed + 2))
    effects = pd.DataFrame({"effect": estimate}, index=pd.Index(data.columns, name="node"))
    if len(replicates):
        effects["low"] = np.quantile(replicates, 0.05, axis=0)
        effects["high"] = np.quantile(replicates, 0.95, axis=0)
    else:
        effects["low"] = effects["high"] = np.nan
    effects["downstream"] = [n in downstream for n in data.columns]
    echo(f"\ndo({TARGET} high = {high_value:.2f}, its 90th percentile) vs do({TARGET} low = {low_value:.2f}, "
         f"its 10th): shift of the mean log intensity, 90% bootstrap interval ({bootstrap} re-inferences)")
    for node in downstream:
        row = effects.loc[node]
        echo(f"  {node:>9}  {row['effect']:+.3f}  [{row['low']:+.3f}, {row['high']:+.3f}]")

    labels = (f"do({TARGET}={low_value:.2f}) (10th pct)", f"do({TARGET}={high_value:.2f}) (90th pct)")
    files["marginals"] = plot_marginals(heldout, generated, out / "marginals.png")
    files["intervention"] = plot_intervention(
        low, high, downstream, labels, out / f"intervention-{sanitise(TARGET)}.png",
        f"Proteins downstream of {TARGET}: do({TARGET} low) vs do({TARGET} high)")
    files["effects"] = plot_effects(effects.loc[downstream], out / f"effects-{sanitise(TARGET)}.png",
                                    f"Shift under do({TARGET} high) vs do({TARGET} low)")
    files["graph"] = plot_graph(graph, out / "graph.png", TARGET, set(downstream))
    folder = out / f"do-{sanitise(TARGET)}"
    folder.mkdir(exist_ok=True)
    for node in downstream:
        path = folder / f"{sanitise(node, taken)}.png"
        files[f"shift:{node}"] = plot_one_shift(low[node].to_numpy(), high[node].to_numpy(), labels, node, path)
    for name, frame, index in (("report", table, True), ("effects", effects, True),
                               ("samples-observational", generated, False),
                               (f"samples-do-{sanitise(TARGET)}-low", low, False),
                               (f"samples-do-{sanitise(TARGET)}-high", high, False)):
        path = out / f"{name}.csv"
        atomic_write_text(path, frame.to_csv(index=index))
        files[name] = path
    atomic_write_text(out / "README.txt", _readme(low_value, high_value, bootstrap))
    files["readme"] = out / "README.txt"
    echo(f"\nwrote {len(files)} files to {out}/ in {time.perf_counter() - start:.1f} s "
         f"(see {out / 'README.txt'})")
    return files


def _readme(low_value: float, high_value: float, bootstrap: int) -> str:
    return f"""condfip demo: Sachs et al. (2005) flow cytometry, zero-shot SCM
All values are natural logs of the measured intensities.

graph.png                  the 17-edge consensus DAG; {TARGET} and its downstream proteins highlighted
marginals.png              held-out cells vs cells generated by the inferred SCM, per protein
intervention-{TARGET}.png       every protein downstream of {TARGET} under do({TARGET}={low_value:.3f}) (10th percentile)
                           vs do({TARGET}={high_value:.3f}) (90th percentile), same noise draws
effects-{TARGET}.png            the mean shift of each downstream protein with a 90% bootstrap interval
                           ({bootstrap} replicates: context cells resampled, SCM re-inferred)
do-{TARGET}/<protein>.png       one plot per downstream protein (file names sanitised, e.g. p44/42 -> p44_42)
report.csv                 per protein: R^2 of its mechanism on the held-out cells, noise statistics and
                           the noise-parent dependence screen (see condfip.report)
effects.csv                the shifts of every protein
samples-*.csv              the generated cells (observational and under each intervention)
"""
