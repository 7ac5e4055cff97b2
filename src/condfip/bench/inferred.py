"""``condfip bench --graph inferred``: the paper's "no true graph" protocol.

Per synthetic dataset, ``condfip.discover`` (default method unless ``--discovery-method``; no subsamples, the
graph is the one search on the context rows) finds a DAG from the context rows alone; every method is then
fitted on that inferred graph (records of part ``synthetic-inferred``) and, beside it, on the true graph (part
``synthetic``, the usual records), on the same rows and scored against the same truth (nodes with true
parents, ``condfip.bench.tasks``). The discovery itself is a record of part ``discovery`` (task ``graph``,
value = SHD, with precision, recall, orientation, seconds and the edges, so a resumed run reuses the graph).
results.md shows them in the section ``condfip.bench.report.inferred_section`` writes.
"""

from __future__ import annotations

import time

import networkx as nx

from condfip.bench.graph_scores import graph_scores
from condfip.bench.suites import Problem

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
