"""``condfip bench --graph inferred``: the paper's "no true graph" protocol.

Per synthetic dataset, ``condfip.discover`` (default method unless ``--discovery-method``; no bootstrap, the
graph is the one search on the context rows) finds a DAG from the context rows alone; every method is then
fitted on that inferred graph (records of part ``synthetic-inferred``) and, beside it, on the true graph (part
``synthetic``, the usual records), on the same rows and scored against the same truth (nodes with true
parents, ``condfip.bench.tasks``). The discovery itself is a record of part ``discovery`` (task ``graph``,
value = SHD, with precision, recall, orientation, seconds and the edges, so a resumed run reuses the graph).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import networkx as nx

from condfip.bench.graph_scores import graph_scores
from condfip.bench.report import _cell_key, _fmt, mean_se
from condfip.bench.suites import Problem
from condfip.bench.tasks import TASKS

GRAPHS = ("true", "inferred")
INFERRED_METHODS = ("condfip", "dowhy")  # the methods --graph inferred runs unless --methods says otherwise


def discovery_record(problem: Problem, method: str | None, seed: int) -> dict:
    """Discover the graph of ``problem`` from its context rows; the record with the graph's scores."""
    from condfip.discover import discover

    start = time.perf_counter()
    graph = discover(problem.context, method=method, resamples=0, seed=seed)
    return {"task": "graph", "method": graph.graph["method"], "status": "ok",
            "seconds": time.perf_counter() - start, **graph_scores(problem.graph, graph),
            "value": None, "edges": [[u, v] for u, v in graph.edges()]}


def graph_from_record(record: dict, columns: list[str]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(columns)
    graph.add_edges_from(tuple(e) for e in record["edges"])
    return graph


def inferred_section(records: list[dict], methods: list[str]) -> list[str]:
    """Markdown: per task and cell, each method on the inferred graph beside the true graph, with the SHD."""
    found = [r for r in records if r.get("part") == "discovery" and r.get("status") == "ok"]
    inferred = [r for r in records if r.get("part") == "synthetic-inferred"]
    if not inferred:
        return []
    true = [r for r in records if r.get("part") == "synthetic"]
    shown = [m for m in methods if any(r["method"] == m for r in inferred)]
    by = defaultdict(list)
    for r in inferred + true:
        if r.get("status") == "ok":
            by[(r["part"], r["task"], r["cell"], r["method"])].append(r["value"])
    shd = defaultdict(list)
    for r in found:
        shd[r["cell"]].append(r)
    cells = sorted({r["cell"] for r in inferred}, key=_cell_key)
    names = sorted({r["method"] for r in found})
    out = ["## inferred graph (no true graph given)", "",
           f"Each dataset's graph discovered from its context rows by {', '.join(names) or '?'} "
           "(`condfip.discover`, no bootstrap); every method fitted on that graph, beside the same method on "
           "the true graph; scores as above (nodes with true parents). SHD, skeleton precision / recall and "
           "orientation accuracy: mean over the cell's datasets.", "",
           "| cell | SHD | precision | recall | orientation | discovery s |", "|---|---|---|---|---|---|"]
    for cell in cells:
        rs = shd.get(cell, [])

        def m(key, digits=2, rs=rs):
            mean, _ = mean_se([r.get(key) for r in rs])
            return "—" if not math.isfinite(mean) else f"{mean:.{digits}f}"
        out.append(f"| {cell} | {m('shd', 1)} | {m('precision')} | {m('recall')} | {m('orientation')} | "
                   f"{m('seconds')} |")
    out.append("")
    for task in TASKS:
        header = ["cell"] + [f"{m} ({g})" for m in shown for g in GRAPHS]
        ratio = "condfip" in shown and "dowhy" in shown
        header += ["condfip/dowhy (inferred)"] if ratio else []
        out += [f"### {task}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for cell in cells:
            row, means = [cell], {}
            for m in shown:
                for g, part in zip(GRAPHS, ("synthetic", "synthetic-inferred"), strict=True):
                    mean, se = mean_se(by.get((part, task, cell, m), []))
                    means[(m, g)] = mean
                    row.append(_fmt(mean, se))
            if ratio:
                a, b = means[("condfip", "inferred")], means[("dowhy", "inferred")]
                row.append(f"{a / b:.2f}" if math.isfinite(a) and math.isfinite(b) and b > 0 else "—")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return out
