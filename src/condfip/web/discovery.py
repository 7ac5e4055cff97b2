"""Graph discovery on the page: ``condfip.discover`` (its default method and its subsample edge confidence) run
off the request thread on an uploaded table. The page polls the discovery's progress, then shows the proposed
DAG with each edge's confidence (an edge below ``condfip.report.LOW_CONFIDENCE`` marked) until the user accepts
it, as proposed or edited (:func:`accepted_graph`), or gives a graph file instead; either becomes a new
workspace (``condfip.web.workspace.build_workspace``).

The :class:`Discoverer` runs one discovery at a time on one daemon thread (the searches are CPU-bound, and BOSS
seeds the global ``random`` module), with at most ``MAX_WAITING`` more queued; a further request is refused
with :class:`DiscoveryBusy`, which the server answers with a 503 and one line.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import networkx as nx
import pandas as pd

from condfip.commands import one_line
from condfip.errors import InputError

MAX_WAITING = 3  # discoveries queued behind the running one

log = logging.getLogger("condfip.web")


class DiscoveryBusy(RuntimeError):
    """The server already runs one discovery and has ``MAX_WAITING`` more queued."""


@dataclass
class Discovery:
    """One discovery of a DAG for an uploaded table: its state (``waiting``, ``running``, ``done``, ``failed``),
    its progress (``done`` of ``resamples`` subsample searches) and, when done, the graph (edge attribute
    ``confidence``) or the one-line error."""

    name: str
    data: pd.DataFrame
    notes: list[str]
    method: str
    resamples: int
    seed: int = 0
    state: str = "waiting"
    done: int = 0
    graph: nx.DiGraph | None = None
    error: str | None = None
    queued: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.data.columns)

    def _progress(self, done: int, total: int) -> None:
        self.done = done

    def run(self) -> None:
        """Discover the graph (on the discoverer's thread); every failure ends as ``state="failed"`` with one
        line (an unexpected one also goes to the server's log with its traceback)."""
        from condfip.discover import discover

        self.started = time.monotonic()
        self.state = "running"
        try:
            graph = discover(self.data, method=self.method, seed=self.seed, resamples=self.resamples,
                             progress=self._progress)
        except InputError as err:
            self.error = one_line(err)
        except Exception as err:
            log.exception("condfip serve: discovery on %s failed", self.name)
            self.error = (f"discovery failed ({type(err).__name__}: {one_line(err)}); fix: upload a graph file "
                          f"instead (the server's log has the details)")
        else:
            self.graph = graph
        self.finished = time.monotonic()
        self.state = "failed" if self.error is not None else "done"  # last: a reader seeing "done" sees the graph

    def seconds(self) -> float:
        """Seconds the search has run (so far, or in all)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def source(self) -> str:
        """``scm.graph_source`` of a workspace on this discovery's graph as proposed."""
        from condfip.discover import graph_source

        return graph_source(self.graph)

    def answer(self) -> dict:
        """What the page shows: the state and progress, and when done the proposed DAG with its layout and
        each edge's confidence and low-confidence flag (``edge_marks``)."""
        from condfip.report import LOW_CONFIDENCE
        from condfip.web.workspace import edge_marks, graph_layout

        out = {"state": self.state, "name": self.name, "rows": len(self.data), "nodes": self.columns,
               "method": self.method, "resamples": self.resamples, "done": self.done,
               "seconds": self.seconds(), "low_confidence": LOW_CONFIDENCE, "error": self.error}
        if self.state == "done":
            out["edges"] = edge_marks(self.graph)
            out["layout"] = graph_layout(self.graph, self.columns)
            out["source"] = self.source()
        return out


def accepted_graph(discovery: Discovery, edges: list[tuple[str, str]] | None) -> tuple[nx.DiGraph, str]:
    """The graph the user accepted, and its ``graph_source``: the discovered graph (``edges`` None), or
    ``edges`` over the table's columns, where an edge as discovered keeps its confidence and one added or
    reversed on the page has none. Acyclicity is checked later, by the input layer."""
    if discovery.state != "done":
        what = f"failed ({discovery.error})" if discovery.state == "failed" else "is still running"
        raise InputError(f"the discovery {what}, so there is no graph to accept yet; fix: wait for it, or upload "
                         f"a graph file instead")
    if edges is None:
        return discovery.graph, discovery.source()
    graph = nx.DiGraph()
    graph.add_nodes_from(discovery.columns)
    for cause, effect in edges:
        found = discovery.graph.edges.get((cause, effect))
        graph.add_edge(cause, effect, **({} if found is None else dict(found)))
    proposed = set(discovery.graph.edges)
    same = set(graph.edges) == proposed
    return graph, discovery.source() + ("" if same else ", edited on the page")


def discovered_name(data_name: str, method: str) -> str:
    """The page's name for a table on its discovered graph."""
    return f"{data_name} + the graph discovered by {method}"


def discovered_workspace(data_source, model, data_name: str):
    """``condfip serve DATA --graph auto``: the workspace on DATA and the graph ``condfip.discover`` finds with
    its defaults (run now, before the server starts), marked as discovered."""
    from condfip.discover import discover, graph_source
    from condfip.web.workspace import build_workspace, read_table

    frame, notes = read_table(data_source)
    graph = discover(frame)
    return build_workspace(frame, notes, graph, model, discovered_name(data_name, graph.graph["method"]),
                           graph_from=graph_source(graph))


class Discoverer:
    """Runs :meth:`Discovery.run` one at a time on a daemon thread (so a server that stops is never held up by a
    search), at most ``1 + waiting`` discoveries unfinished."""

    def __init__(self, waiting: int = MAX_WAITING):
        self.waiting = int(waiting)
        self._queue: queue.Queue[Discovery] = queue.Queue()
        self._lock = threading.Lock()
        self._unfinished = 0
        self._worker: threading.Thread | None = None

    def start(self, discovery: Discovery) -> None:
        with self._lock:
            if self._unfinished > self.waiting:
                raise DiscoveryBusy(f"the server already has {self._unfinished} discoveries running or queued (it "
                                    f"runs one at a time); fix: wait for them to finish and try again, or upload "
                                    f"a graph file")
            self._unfinished += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="condfip-discover", daemon=True)
                self._worker.start()
        self._queue.put(discovery)

    def _work(self) -> None:
        while True:
            discovery = self._queue.get()
            try:
                discovery.run()
            finally:
                with self._lock:
                    self._unfinished -= 1
