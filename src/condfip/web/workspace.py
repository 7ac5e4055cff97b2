"""One dataset on the what-if page: the table, its DAG and the SCM inferred from them, read-only once built.

:func:`load_workspace` reads the inputs with the library's input layer (``condfip.inputs.read_data``,
``read_graph``, ``validate``: the CLI's checks and its one-line ``InputError`` messages) and infers the SCM with
``infer`` (one forward pass, then the default kernel mechanisms); :func:`read_table` and :func:`build_workspace`
are its two halves (a discovered graph comes between them, ``condfip.web.discovery``). The trust report and the
observational samples are computed once and kept.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from condfip.errors import InputError

MAX_NODES = 100  # the page draws every node; a larger graph is a job for the CLI or the Python API
BEYOND_MARGIN = 0.25  # the sliders reach this share of the data's range past each end ("beyond the data")
FARTHEST = 100  # the API refuses values more than this many data ranges outside the data


@dataclass
class Workspace:
    """A dataset, its DAG and its inferred SCM (``condfip.InferredSCM``), plus what the page shows of them."""

    name: str
    data: pd.DataFrame
    graph: nx.DiGraph
    scm: Any
    notes: list[str] = field(default_factory=list)
    _report: Any = field(default=None, repr=False)
    _observational: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def columns(self) -> list[str]:
        return list(self.data.columns)

    def report(self):
        """``scm.report()`` on the context rows, computed once."""
        with self._lock:
            if self._report is None:
                self._report = self.scm.report()
            return self._report

    def observational(self, n: int, seed: int) -> pd.DataFrame:
        """``scm.sample(n, seed=seed)``, kept for the last two (n, seed) pairs asked for."""
        key = (n, seed)
        with self._lock:
            if key not in self._observational:
                if len(self._observational) >= 2:
                    self._observational.pop(next(iter(self._observational)))
                self._observational[key] = self.scm.sample(n, seed=seed)
            return self._observational[key]

    def downstream(self, nodes) -> list[str]:
        """The descendants of ``nodes`` in the DAG, in column order."""
        reached = set().union(*(nx.descendants(self.graph, node) for node in nodes)) if nodes else set()
        return [c for c in self.columns if c in reached]

    def data_range(self, node: str) -> tuple[float, float]:
        column = self.data[node]
        return float(column.min()), float(column.max())

    def slider(self, node: str) -> dict:
        """The data's range of ``node`` and the slider bounds for a hard value and for a shift: the data's
        range plus a "beyond the data" margin on each side. A shift is beyond the data when it moves the
        node's mean outside the data's range."""
        low, high = self.data_range(node)
        margin = BEYOND_MARGIN * (high - low)
        mean = float(self.data[node].mean())
        return {"min": low, "max": high, "mean": mean,
                "do": [low - margin, high + margin], "shift": [low - mean - margin, high - mean + margin]}

    def check_reach(self, node: str, kind: str, value: float) -> None:
        """Refuse a hard value (or a shifted mean) more than ``FARTHEST`` data ranges outside the data's range:
        far past where the network has seen anything, and where sums of such values overflow."""
        low, high = self.data_range(node)
        where = value if kind == "do" else float(self.data[node].mean()) + value
        span = high - low
        if where < low - FARTHEST * span or where > high + FARTHEST * span:
            raise InputError(f"the {'value' if kind == 'do' else 'shift'} {value:.4g} for {node!r} is more than "
                             f"{FARTHEST} data ranges outside {node}'s data ({low:.4g} to {high:.4g}); fix: choose "
                             f"a value nearer the data (the sliders reach {BEYOND_MARGIN:g} ranges past each end)")

    def beyond_data(self, node: str, kind: str, value: float) -> str | None:
        """A one-line warning when a hard value (or the mean after a shift) lies outside the data's range."""
        low, high = self.data_range(node)
        where = value if kind == "do" else float(self.data[node].mean()) + value
        if low <= where <= high:
            return None
        what = f"do({node}={value:.4g})" if kind == "do" else f"shift({node} by {value:+.4g}, mean {where:.4g})"
        return (f"{what} is beyond the data ({node} ranges {low:.4g} to {high:.4g}): the mechanisms "
                f"extrapolate there, trust these answers less")


def graph_layout(graph: nx.DiGraph, columns: list[str]) -> dict[str, list[float]]:
    """Node positions in [0, 1]^2: causes on top, one row per topological generation."""
    layers = [sorted(layer, key=columns.index) for layer in nx.topological_generations(graph)]
    out = {}
    for depth, layer in enumerate(layers):
        y = (depth + 0.5) / len(layers)
        for k, node in enumerate(layer):
            out[node] = [(k + 0.5) / len(layer), y]
    return out


def edge_marks(graph: nx.DiGraph) -> list[dict]:
    """Each edge as the page draws it: cause, effect, its bootstrap confidence (a discovered edge; else None)
    and whether that is low (``condfip.report.is_low_confidence``)."""
    from condfip.report import is_low_confidence

    return [{"cause": u, "effect": v, "confidence": attrs.get("confidence"), "low": is_low_confidence(attrs)}
            for u, v, attrs in graph.edges(data=True)]


def layout(workspace: Workspace) -> dict[str, list[float]]:
    return graph_layout(workspace.graph, workspace.columns)


def _noted(action):
    """``action()`` with the warnings it raises (e.g. the input layer's "few distinct values") kept as one-line
    notes: (result, notes)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = action()
    return result, [" ".join(str(w.message).split()) for w in caught]


def read_table(data_source) -> tuple[pd.DataFrame, list[str]]:
    """The data table read and checked as the CLI does (``condfip.inputs.read_data``), at most ``MAX_NODES``
    columns, and the input layer's warnings as notes."""
    from condfip.inputs import read_data

    frame, notes = _noted(lambda: read_data(data_source))
    if frame.shape[1] > MAX_NODES:
        raise InputError(f"the data has {frame.shape[1]} columns but the page draws at most {MAX_NODES} nodes; "
                         f"fix: pass a subgraph, or use the CLI or the Python API for this graph")
    return frame, notes


def build_workspace(frame: pd.DataFrame, notes: list[str], graph_source, model, name: str,
                    graph_from: str = "given") -> Workspace:
    """Read and check the DAG against the table as the CLI does, infer the SCM with ``model`` and compute its
    trust report. ``graph_from`` becomes ``scm.graph_source``: ``"given"``, or how the graph was discovered."""
    from condfip.inputs import read_graph, validate
    from condfip.memory import check_memory

    (frame, dag), graph_notes = _noted(lambda: validate(frame, read_graph(graph_source, nodes=list(frame.columns))))
    check_memory(min(len(frame), model.max_context), frame.shape[1], model.network.config)
    scm = model.infer(frame, dag)
    scm.graph_source = graph_from
    workspace = Workspace(name=name, data=frame, graph=dag, scm=scm, notes=[*notes, *graph_notes])
    workspace.report()
    return workspace


def load_workspace(data_source, graph_source, model, name: str) -> Workspace:
    """Read and check the data and the DAG as the CLI does, infer the SCM with ``model`` and compute its
    trust report. Raises InputError with the input layer's one-line message; the input layer's warnings
    (e.g. a column with few distinct values) are kept as ``notes``."""
    frame, notes = read_table(data_source)
    return build_workspace(frame, notes, graph_source, model, name)


def sachs_workspace(model) -> Workspace:
    """The demo's data (``condfip demo``): Sachs et al. (2005), natural log of the intensities, all 853 cells
    as the context, and the 17-edge consensus DAG."""
    from condfip.demo import sachs_data, sachs_graph

    return load_workspace(np.log(sachs_data()), sachs_graph(), model,
                          "Sachs et al. (2005) flow cytometry, log intensities (the condfip demo data)")
