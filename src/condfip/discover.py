"""Causal discovery: a DAG over the data's columns from an established library, with a per-edge confidence
and the user's background knowledge honoured.

``discover(data)`` runs one search on all rows (that graph is the answer) and the same search on ``resamples``
random halves of the rows (drawn without replacement, as in stability selection; ``subsample_rows``); an edge's
``stability`` is the share of subsamples whose DAG holds the edge in the same direction, and its ``confidence``
is that stability mapped to how often edges so stable were right on the simulator's prior, per method
(``condfip.edge_confidence``). Halves, not bootstrap resamples: on the prior the edges that were stable over
halves were right more often (docs/discovery.md).
The methods (``METHODS``) are third-party implementations, chosen by
measurement (docs/discovery.md; ``tools/discovery_comparison.py`` reproduces it):

- ``pc``: PC with Fisher-z tests, alpha 0.05 (causal-learn). Background knowledge is native (causal-learn's
  ``BackgroundKnowledge``: required and forbidden edges, tiers).
- ``ges``: GES with the BIC score (causal-learn). Knowledge is applied to its result (below).
- ``boss``: BOSS, a permutation search with the BIC score (causal-learn). Knowledge applied to its result.
- ``direct-lingam``: DirectLiNGAM (the ``lingam`` package) for linear non-Gaussian noise. Tiers and required
  edges are passed to its search as path knowledge (a required i -> j is a path i to j; a later tier has no
  path to an earlier one); then the knowledge is applied to its result.

Every method's result goes through one deterministic step, ``to_dag``, which makes it a DAG that honours the
knowledge: required edges are put in first and never removed; an edge against a tier or a forbidden edge is
reversed if the reverse is allowed, else dropped; directed edges are added in column order and one that
would close a cycle is reversed (dropped when the reverse also closes one or is not allowed); edges a CPDAG
leaves undirected are oriented by the Dor-Tarsi consistent extension (no new v-structure), taking the first
eligible node in column order, and any the extension cannot place follow a topological order of what is
already directed (ties by column order). So every answer is a DAG, the same for the same data and seed.
Directions set by that convention (extension, fallback, a reversal to break a cycle) are not evidence: in the
subsamples they count half for each direction, so such an edge's stability is at most 0.5 per direction.
"""

from __future__ import annotations

import contextlib
import io
import random
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from condfip import edge_confidence
from condfip.errors import InputError

METHODS = ("pc", "ges", "boss", "direct-lingam")
# the most columns each method is allowed, so that discover with the default resamples stays within
# minutes on a 2-core machine: GES and DirectLiNGAM took over 60 s per search at d = 50, BOSS and PC 10-20 s
# (docs/discovery.md has the measured times per search)
MAX_COLUMNS = {"pc": 100, "ges": 30, "boss": 100, "direct-lingam": 30}
SUGGESTED = ("boss", "pc", "ges", "direct-lingam")  # the method to suggest for many columns: fastest first
MIN_DISCOVERY_ROWS = 30  # and at least columns + 10: the tests and scores need the covariance to be full rank
DEFAULT_RESAMPLES = 20
DUPLICATE_CORRELATION = 1.0 - 1e-9  # columns this correlated are the same variable for a discovery method


def default_method(n_rows: int, n_columns: int) -> str:
    """The method ``discover`` runs when none is named, chosen by measurement (docs/discovery.md): on the
    graph GES finds, condfip's noise and intervention answers had the best mean rank over the n = 400,
    d in {10, 20} cells of the prior, but a GES search cost 6-8x a BOSS search at d = 20, too slow for the
    subsamples there; BOSS came next at d = 20 (best on RFF mechanisms, best SHD) and was the most accurate
    at d = 20, n = 100 and d = 50. So: GES up to 10 columns, BOSS above."""
    return "ges" if n_columns <= 10 else "boss"


# --------------------------------------------------------------------------------------------------
# background knowledge


@dataclass(frozen=True)
class Knowledge:
    """Background knowledge over column indices: required and forbidden directed edges, tiers (an edge may
    not point from a later tier to an earlier one; columns without a tier are unconstrained)."""

    required: frozenset[tuple[int, int]] = frozenset()
    forbidden: frozenset[tuple[int, int]] = frozenset()
    tier: dict[int, int] = field(default_factory=dict)

    def allowed(self, cause: int, effect: int) -> bool:
        if (cause, effect) in self.forbidden:
            return False
        return not (cause in self.tier and effect in self.tier and self.tier[cause] > self.tier[effect])

    @property
    def empty(self) -> bool:
        return not (self.required or self.forbidden or self.tier)


def _edge_pairs(edges: Any, what: str, columns: list[str]) -> list[tuple[str, str]]:
    """``edges`` (pairs, or a DiGraph whose edges count) as a list of (cause, effect) names of columns."""
    if isinstance(edges, nx.Graph):
        if not edges.is_directed():
            raise InputError(f"{what} is an undirected graph; fix: pass an nx.DiGraph or (cause, effect) pairs")
        pairs = [(str(u), str(v)) for u, v in edges.edges()]
    else:
        pairs = []
        for edge in edges or ():
            if isinstance(edge, str) or not isinstance(edge, Iterable) or len(tuple(edge)) != 2:
                raise InputError(f"{what} holds {edge!r}, not a (cause, effect) pair; fix: pass pairs such as "
                                 f"[('X', 'Y')] or an nx.DiGraph")
            cause, effect = tuple(edge)
            pairs.append((str(cause), str(effect)))
    known = set(columns)
    for cause, effect in pairs:
        for name in (cause, effect):
            if name not in known:
                raise InputError(f"{what} names {name!r}, which is not a column of the data; fix: use the "
                                 f"data's column names ({', '.join(columns[:10])}{' ...' if len(columns) > 10 else ''})")
        if cause == effect:
            raise InputError(f"{what} holds the self-loop {cause!r} -> {cause!r}; fix: remove it, a variable "
                             f"cannot cause itself")
    return pairs


def _tier_map(tiers: Any, columns: list[str]) -> dict[str, int]:
    """Tiers as {column: tier}: a sequence of groups of columns, earliest first, or a {column: tier} map."""
    if tiers is None:
        return {}
    if isinstance(tiers, dict):
        items = [(str(k), v) for k, v in tiers.items()]
    else:
        items = []
        for position, group in enumerate(tiers):
            if isinstance(group, str) or not isinstance(group, Iterable):
                raise InputError(f"tiers[{position}] is {group!r}, not a group of columns; fix: pass tiers as a "
                                 f"list of lists, earliest first, e.g. [['age'], ['smoking'], ['cancer']]")
            items.extend((str(name), position) for name in group)
    out: dict[str, int] = {}
    known = set(columns)
    for name, level in items:
        if name not in known:
            raise InputError(f"tiers name {name!r}, which is not a column of the data; fix: use the data's "
                             f"column names")
        if not isinstance(level, (int, np.integer)) or isinstance(level, bool):
            raise InputError(f"tier of {name!r} is {level!r}, not an integer; fix: give each column one integer "
                             f"tier (earlier = smaller)")
        if name in out and out[name] != level:
            raise InputError(f"column {name!r} is in two tiers ({out[name]} and {level}); fix: put it in one")
        out[name] = int(level)
    return out


def make_knowledge(columns: list[str], required: Any = (), forbidden: Any = (), tiers: Any = None) -> Knowledge:
    """Check the knowledge against the columns and itself; one InputError per contradiction."""
    required_pairs = _edge_pairs(required, "required", columns)
    forbidden_pairs = _edge_pairs(forbidden, "forbidden", columns)
    tier = _tier_map(tiers, columns)
    both = sorted(set(required_pairs) & set(forbidden_pairs))
    if both:
        cause, effect = both[0]
        raise InputError(f"the edge {cause} -> {effect} is both required and forbidden; fix: remove it from one "
                         f"of the two")
    for cause, effect in required_pairs:
        if cause in tier and effect in tier and tier[cause] > tier[effect]:
            raise InputError(f"the required edge {cause} -> {effect} points from tier {tier[cause]} back to tier "
                             f"{tier[effect]}; fix: drop the edge or move {cause!r} to an earlier tier")
    given = nx.DiGraph(required_pairs)
    try:
        cycle = nx.find_cycle(given)
    except nx.NetworkXNoCycle:
        pass
    else:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise InputError(f"the required edges form a cycle {path}; fix: remove one of them, the result must be "
                         f"a DAG")
    index = {name: i for i, name in enumerate(columns)}
    return Knowledge(
        required=frozenset((index[u], index[v]) for u, v in required_pairs),
        forbidden=frozenset((index[u], index[v]) for u, v in forbidden_pairs),
        tier={index[name]: level for name, level in tier.items()},
    )


# --------------------------------------------------------------------------------------------------
# the methods: each returns (directed edges, undirected edges) over column indices


Pattern = tuple[set[tuple[int, int]], set[tuple[int, int]]]


def _from_causallearn(matrix: np.ndarray) -> Pattern:
    """causal-learn's endpoint matrix (G[j, i] = 1 and G[i, j] = -1: i -> j; both -1 (or both 1): i - j)."""
    directed, undirected = set(), set()
    d = matrix.shape[0]
    for i in range(d):
        for j in range(i + 1, d):
            a, b = matrix[i, j], matrix[j, i]
            if a == -1 and b == 1:
                directed.add((i, j))
            elif a == 1 and b == -1:
                directed.add((j, i))
            elif a != 0 and b != 0:
                undirected.add((i, j))
    return directed, undirected


def _causallearn_knowledge(knowledge: Knowledge, d: int):
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    nodes = [GraphNode(f"X{i + 1}") for i in range(d)]  # causal-learn's default names, in column order
    bk = BackgroundKnowledge()
    for u, v in sorted(knowledge.required):
        bk.add_required_by_node(nodes[u], nodes[v])
    for u in range(d):
        for v in range(d):
            if u != v and (u, v) not in knowledge.required and not knowledge.allowed(u, v):
                bk.add_forbidden_by_node(nodes[u], nodes[v])
    return bk


def _pc(x: np.ndarray, knowledge: Knowledge, seed: int) -> Pattern:
    from causallearn.search.ConstraintBased.PC import pc

    bk = None if knowledge.empty else _causallearn_knowledge(knowledge, x.shape[1])
    result = pc(x, alpha=0.05, indep_test="fisherz", stable=True, background_knowledge=bk, show_progress=False)
    return _from_causallearn(result.G.graph)


def _ges(x: np.ndarray, knowledge: Knowledge, seed: int) -> Pattern:
    from causallearn.search.ScoreBased.GES import ges

    return _from_causallearn(ges(x, score_func="local_score_BIC")["G"].graph)


def _boss(x: np.ndarray, knowledge: Knowledge, seed: int) -> Pattern:
    from causallearn.search.PermutationBased.BOSS import boss

    state = random.getstate()  # BOSS shuffles its initial order with the random module: seed it, then restore
    random.seed(seed)
    try:
        return _from_causallearn(boss(x, score_func="local_score_BIC_from_cov", verbose=False).graph)
    finally:
        random.setstate(state)


def _direct_lingam(x: np.ndarray, knowledge: Knowledge, seed: int) -> Pattern:
    import lingam

    d = x.shape[1]
    prior = None
    if knowledge.required or knowledge.tier:
        # lingam: prior[i, j] = 0: x_j has no directed path to x_i; 1: x_j has one; -1: unknown
        prior = -np.ones((d, d), dtype=int)
        for u, v in knowledge.required:
            prior[v, u] = 1
        for u, level_u in knowledge.tier.items():
            for v, level_v in knowledge.tier.items():
                if level_u > level_v:
                    prior[v, u] = 0
        np.fill_diagonal(prior, -1)
    model = lingam.DirectLiNGAM(random_state=seed, prior_knowledge=prior)
    model.fit(x)
    weights = model.adjacency_matrix_  # weights[i, j] != 0: j -> i
    effects, causes = np.nonzero(weights)
    return {(int(c), int(e)) for c, e in zip(causes, effects, strict=True)}, set()


def preload() -> None:
    """Import the discovery libraries now (timing scripts fork after this, so no search pays the import)."""
    import causallearn.search.ConstraintBased.PC
    import causallearn.search.PermutationBased.BOSS
    import causallearn.search.ScoreBased.GES  # noqa: F401
    import lingam  # noqa: F401


SEARCHES = {"pc": _pc, "ges": _ges, "boss": _boss, "direct-lingam": _direct_lingam}


# --------------------------------------------------------------------------------------------------
# one deterministic DAG from a pattern and the knowledge


def _add_acyclic(dag: nx.DiGraph, cause: int, effect: int, knowledge: Knowledge, settled: bool) -> None:
    """Add cause -> effect, or its reverse when the edge is not allowed or closes a cycle; else nothing.
    Edge attribute ``settled``: the direction comes from the search or the knowledge (``settled`` and not
    reversed to break a cycle), not from a convention."""
    for u, v in ((cause, effect), (effect, cause)):
        if knowledge.allowed(u, v) and not nx.has_path(dag, v, u):
            reversed_for_cycle = (u, v) != (cause, effect) and knowledge.allowed(cause, effect)
            dag.add_edge(u, v, settled=settled and not reversed_for_cycle)
            return


def _dor_tarsi(directed: nx.DiGraph, undirected: set[tuple[int, int]], d: int) -> list[tuple[int, int]]:
    """Orientations of the undirected edges by the Dor-Tarsi extension: repeatedly take a node (lowest index
    first) with no outgoing directed edge whose undirected neighbours are adjacent to all its other
    neighbours, point its undirected edges into it and remove it. Returns the oriented edges it placed; the
    edges it could not place are left out."""
    remaining = set(range(d))
    out_edges = {i: {v for v in directed.successors(i)} for i in range(d)}
    in_edges = {i: {u for u in directed.predecessors(i)} for i in range(d)}
    und = {i: set() for i in range(d)}
    for i, j in undirected:
        und[i].add(j)
        und[j].add(i)
    oriented = []
    progress = True
    while progress and any(und[i] for i in remaining):
        progress = False
        for x in sorted(remaining):
            if out_edges[x] & remaining:
                continue
            neighbours = (und[x] | in_edges[x]) & remaining
            if all(neighbours - {y} <= (und[y] | in_edges[y] | out_edges[y]) for y in und[x] & remaining):
                for y in sorted(und[x] & remaining):
                    oriented.append((y, x))
                    und[y].discard(x)
                for y in list(und[x]):
                    und[y].discard(x)
                und[x] = set()
                remaining.discard(x)
                progress = True
                break
    return oriented


def to_dag(pattern: Pattern, knowledge: Knowledge, d: int) -> nx.DiGraph:
    """The pattern as a DAG over 0..d-1 that honours the knowledge (module docstring: how)."""
    directed, undirected = pattern
    dag = nx.DiGraph()
    dag.add_nodes_from(range(d))
    dag.add_edges_from(sorted(knowledge.required), settled=True)
    open_edges = set()
    for i, j in sorted(undirected):
        if dag.has_edge(i, j) or dag.has_edge(j, i):
            continue
        if knowledge.allowed(i, j) != knowledge.allowed(j, i):  # knowledge settles the direction
            directed = directed | {(i, j) if knowledge.allowed(i, j) else (j, i)}
        elif knowledge.allowed(i, j):
            open_edges.add((i, j))
    for cause, effect in sorted(directed):
        if not (dag.has_edge(cause, effect) or dag.has_edge(effect, cause)):
            _add_acyclic(dag, cause, effect, knowledge, settled=True)
    open_edges = {(i, j) for i, j in open_edges if not (dag.has_edge(i, j) or dag.has_edge(j, i))}
    for cause, effect in _dor_tarsi(dag, open_edges, d):
        _add_acyclic(dag, cause, effect, knowledge, settled=False)
    rank = {node: r for r, node in enumerate(nx.lexicographical_topological_sort(dag))}
    for i, j in sorted(open_edges):
        if not (dag.has_edge(i, j) or dag.has_edge(j, i)):
            _add_acyclic(dag, *((i, j) if rank[i] < rank[j] else (j, i)), knowledge, settled=False)
    return dag


# --------------------------------------------------------------------------------------------------
# checks and the entry point


def check_data(frame: pd.DataFrame, method: str) -> None:
    """Refuse, before any search, data the method cannot handle: one column, too few rows, duplicate columns,
    too many columns."""
    n, d = frame.shape
    if d < 2:
        names = ", ".join(repr(str(c)) for c in frame.columns)
        raise InputError(f"discovery needs at least 2 columns, the data have {d} ({names}); "
                         f"fix: pass a table with one column per variable (a file with another delimiter reads as one "
                         f"column), or with a single variable skip discovery: there is no edge to find")
    need = max(MIN_DISCOVERY_ROWS, d + 10)
    if n < need:
        raise InputError(f"discovery on {d} columns needs at least {need} rows, the data have {n}; fix: supply "
                         f"more rows, or pass the causal graph yourself (graph=...)")
    if d > MAX_COLUMNS[method]:
        fast = [m for m in SUGGESTED if MAX_COLUMNS[m] >= d]
        other = f"method={fast[0]!r} (handles up to {MAX_COLUMNS[fast[0]]})" if fast else "fewer columns"
        raise InputError(f"method {method!r} handles at most {MAX_COLUMNS[method]} columns in reasonable time "
                         f"and the data have {d}; fix: use {other}, or pass the causal graph yourself "
                         f"(graph=...; a partial one as required=...)")
    x = frame.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x, rowvar=False)
    close = np.argwhere(np.triu(np.abs(corr) >= DUPLICATE_CORRELATION, k=1))
    if close.size:
        a, b = (str(frame.columns[k]) for k in close[0])
        kind = "duplicate" if np.array_equal(x[:, close[0][0]], x[:, close[0][1]]) else "perfectly correlated"
        raise InputError(f"columns {a!r} and {b!r} are {kind}: no method can tell which causes which; fix: drop "
                         f"one of them")


def subsample_rows(n_rows: int, n_columns: int) -> int:
    """Rows per subsample of the confidence: half of them, but never fewer than a search needs
    (``check_data``'s minimum; then the subsamples are more than halves, up to all rows but one, and agree more
    than halves would: the confidence is higher than on enough data)."""
    return min(n_rows - 1, max(n_rows // 2, MIN_DISCOVERY_ROWS, n_columns + 10))


def _search(x: np.ndarray, method: str, knowledge: Knowledge, seed: int) -> nx.DiGraph:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pattern = SEARCHES[method](x, knowledge, seed)
        except ImportError as err:
            raise InputError(f"discovery method {method!r} needs a package that is not installed ({err.name}); "
                             f"fix: pip install 'condfip[discover]'") from None
    return to_dag(pattern, knowledge, x.shape[1])


def discover(data, *, method: str | None = None, required: Any = (), forbidden: Any = (), tiers: Any = None,
             seed: int = 0, resamples: int = DEFAULT_RESAMPLES,
             progress: Callable[[int, int], None] | None = None) -> nx.DiGraph:
    """A causal DAG over the columns of ``data`` (DataFrame, CSV/Parquet path or named array).

    Args:
        method: one of ``METHODS``; None: ``default_method(rows, columns)``.
        required: edges that must be in the result: (cause, effect) pairs or an nx.DiGraph (a partial graph
            you hold: it is completed, never changed).
        forbidden: edges that must not be in the result (pairs or an nx.DiGraph).
        tiers: groups of columns, earliest first (e.g. time order): no edge points to an earlier tier. Also a
            {column: integer tier} map. Columns in no tier are unconstrained.
        seed: seeds the subsamples (and the methods that draw random numbers).
        resamples: subsamples of the rows (random halves, ``subsample_rows``) for the edges' ``stability`` and
            ``confidence`` (0: neither is computed, both are None).
        progress: called as ``progress(done, resamples)`` after the search on all rows (``done`` = 0) and
            after each subsample's search (e.g. for a progress display; an exception it raises stops the
            discovery and propagates).

    Returns:
        An nx.DiGraph over the columns (data order). Edge attributes: ``stability`` (share of subsamples whose
        DAG has that edge in that direction; an edge whose direction the search left open, an undirected
        CPDAG edge, counts half for each direction), ``confidence`` (the stability mapped to the share of
        edges that stable that were right, present and oriented, on the simulator's prior for this method:
        ``condfip.edge_confidence``; 1 for a required edge) and ``given`` (True for a required edge). Graph
        attributes: ``method``, ``resamples``, ``seed``, ``seconds``.
    """
    from condfip.inputs import read_data

    start = time.perf_counter()
    frame = read_data(data)
    columns = [str(c) for c in frame.columns]
    method = default_method(*frame.shape) if method is None else method
    if method not in SEARCHES:
        raise InputError(f"unknown discovery method {method!r}; fix: choose one of {', '.join(METHODS)}")
    if not isinstance(resamples, (int, np.integer)) or isinstance(resamples, bool) or resamples < 0:
        raise InputError(f"resamples must be a non-negative integer, got {resamples!r}; fix: e.g. resamples=20")
    knowledge = make_knowledge(columns, required, forbidden, tiers)
    check_data(frame, method)
    x = frame.to_numpy(dtype=np.float64)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    dag = _search(x, method, knowledge, seed)
    if progress is not None:
        progress(0, int(resamples))
    counts: dict[tuple[int, int], float] = {}
    rng = np.random.default_rng([seed, 22])
    size = subsample_rows(*x.shape)
    for done in range(1, resamples + 1):
        rows = rng.permutation(len(x))[:size]
        for u, v, settled in _search(x[rows], method, knowledge, seed).edges(data="settled"):
            # a direction set by convention (an undirected CPDAG edge, a cycle broken) counts half each way
            for edge, share in (((u, v), 1.0),) if settled else (((u, v), 0.5), ((v, u), 0.5)):
                counts[edge] = counts.get(edge, 0.0) + share
        if progress is not None:
            progress(done, int(resamples))
    graph = nx.DiGraph(method=method, resamples=int(resamples), seed=seed)
    graph.add_nodes_from(columns)
    for u, v in dag.edges():
        stability = counts.get((u, v), 0) / resamples if resamples else None
        given = (u, v) in knowledge.required
        confidence = (None if stability is None else 1.0 if given  # a required edge is the user's knowledge
                      else edge_confidence.confidence(method, stability))
        graph.add_edge(columns[u], columns[v], stability=stability, confidence=confidence, given=given)
    graph.graph["seconds"] = time.perf_counter() - start
    return graph


def graph_source(graph: nx.DiGraph) -> str:
    """How ``discover`` found ``graph``, as ``InferredSCM.graph_source`` says it."""
    return f"discovered: {graph.graph['method']}, {graph.graph['resamples']} resamples"


def edge_table(graph: nx.DiGraph) -> pd.DataFrame:
    """The graph as an edge list ``cause, effect, confidence`` (confidence empty where unknown)."""
    rows = [(u, v, attrs.get("confidence")) for u, v, attrs in graph.edges(data=True)]
    return pd.DataFrame(rows, columns=["cause", "effect", "confidence"])
