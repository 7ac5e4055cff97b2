"""The benchmark's synthetic suites: which cells, how many SCMs per cell, and the fixed seeds.

A cell is (preset, mechanism, d, context n). Every dataset is simulated by ``condfip.simulate.simulate`` with
``n_context + 400`` rows (standardised over all rows, the ground-truth ``SyntheticSCM`` in the same units):
the first ``n_context`` rows are the context every method is fitted on, the last 400 are the query rows.

Seeds: every dataset comes from the stream ``(BENCH_SEED, index)`` where the index names (preset, mechanism,
d, k) and not n, so the k-th SCM of a cell is the same SCM at every context size (only its rows differ).
BENCH_SEED differs from the validation seed (``condfip.train.VALIDATION_SEED``) and from training seeds, whose
streams have other keys (``(seed, step)`` and ``(seed, step, chunk)``, default seed 0).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from condfip.scm import SCM
from condfip.simulate import get_prior, simulate

BENCH_SEED = 20_250_917
QUERY_ROWS = 400
PRESETS = ("paper-in", "paper-out")
MECHANISMS = ("linear", "rff")
NODES = (10, 20, 50, 100)
CONTEXTS = (50, 100, 400, 1000)
EXTRAPOLATION_SDS = (2.0, 4.0)  # the extrapolation task's values: this many context SDs beyond the range


@dataclass(frozen=True)
class Cell:
    preset: str
    mechanism: str
    d: int
    n_context: int
    count: int  # SCMs (datasets) in this cell

    @property
    def name(self) -> str:
        return f"{self.preset}/{self.mechanism}/d{self.d}/n{self.n_context}"


def full_cells() -> list[Cell]:
    """The full run: 9 SCMs per cell for d <= 20 at n = 400 (the paper's setting), 5 for d <= 20 at the other
    context sizes, 3 for d in {50, 100}."""
    cells = []
    for preset in PRESETS:
        for mechanism in MECHANISMS:
            for d in NODES:
                for n in CONTEXTS:
                    count = (9 if n == 400 else 5) if d <= 20 else 3
                    cells.append(Cell(preset, mechanism, d, n, count))
    return cells


def quick_cells() -> list[Cell]:
    """``--quick``: d in {10, 20}, n = 400, both presets and mechanisms, 3 SCMs per cell."""
    return [Cell(p, m, d, 400, 3) for p in PRESETS for m in MECHANISMS for d in (10, 20)]


def select_cells(cells: list[Cell], patterns: list[str] | None) -> list[Cell]:
    """Cells whose name matches any glob pattern (e.g. ``paper-in/linear/*/n400``); all when no pattern."""
    if not patterns:
        return list(cells)
    return [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def dataset_index(preset: str, mechanism: str, d: int, k: int) -> int:
    return 10_000_000 * PRESETS.index(preset) + 1_000_000 * MECHANISMS.index(mechanism) + 1_000 * d + k


@dataclass
class Problem:
    """One benchmark dataset with everything the four tasks need (standardised units throughout)."""

    cell: str
    index: int
    context: pd.DataFrame
    query: pd.DataFrame
    true_noise: pd.DataFrame  # noise of the query rows
    truth: SCM
    graph: nx.DiGraph
    target: str  # the intervened node (has at least one descendant)
    value: float  # its intervention value, inside its observed (context) range
    truth_do: pd.DataFrame  # the true SCM under do(target = value), pushed by the true query noise
    # the extrapolation task: do(target = v) for v 2 and 4 context SDs beyond the target's context range (one
    # side, drawn per dataset), and the true SCM under each, pushed by the true query noise
    extrapolation_values: tuple[float, ...] = ()
    truth_extrapolation: tuple[pd.DataFrame, ...] = ()

    @property
    def columns(self) -> list[str]:
        return list(self.query.columns)

    def scored(self, exclude_target: bool = False) -> np.ndarray:
        """Nodes with parents (minus the intervened node)."""
        mask = np.array([self.graph.in_degree(c) > 0 for c in self.columns])
        if exclude_target:
            mask &= np.array([c != self.target for c in self.columns])
        return mask

    def descendants(self) -> np.ndarray:
        """The intervened node's descendants: the nodes an intervention on it moves."""
        below = nx.descendants(self.graph, self.target)
        return np.array([c in below for c in self.columns])

    @property
    def noise_scale(self) -> np.ndarray:
        return self.true_noise.to_numpy().std(axis=0)


def make_problem(preset: str, mechanism: str, d: int, n_context: int, k: int, *, seed: int = BENCH_SEED,
                 query_rows: int = QUERY_ROWS, prior=None) -> Problem:
    """Dataset ``k`` of a cell, its split and its intervention."""
    from condfip.train import VALIDATION_SEED

    if seed == VALIDATION_SEED:
        raise ValueError("the benchmark must not use the validation seed")
    index = dataset_index(preset, mechanism, d, k)
    ds = simulate(prior or get_prior(preset), nodes=d, samples=n_context + query_rows, seed=seed, index=index,
                  mechanism=mechanism)
    context, query = ds.data.iloc[:n_context], ds.data.iloc[n_context:]
    true_noise = ds.noise.iloc[n_context:]
    graph = ds.scm.graph
    rng = np.random.default_rng([seed, index, n_context, 1])
    candidates = [c for c in context.columns if graph.out_degree(c) > 0]
    target = str(rng.choice(candidates))
    lo, hi = float(context[target].min()), float(context[target].max())
    value = float(rng.uniform(lo, hi))
    truth_do = ds.scm.do({target: value}).sample(noise=true_noise)
    side = 1.0 if rng.random() < 0.5 else -1.0
    edge, sd = (hi if side > 0 else lo), float(context[target].std(ddof=1))
    beyond = tuple(edge + side * sds * sd for sds in EXTRAPOLATION_SDS)
    truth_beyond = tuple(ds.scm.do({target: v}).sample(noise=true_noise) for v in beyond)
    return Problem(cell=f"{preset}/{mechanism}/d{d}/n{n_context}", index=k, context=context, query=query,
                   true_noise=true_noise, truth=ds.scm, graph=graph, target=target, value=value,
                   truth_do=truth_do, extrapolation_values=beyond, truth_extrapolation=truth_beyond)
