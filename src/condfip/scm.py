"""The one SCM interface every structural causal model in condfip answers.

An additive-noise SCM over the columns of a table: ``x_i = f_i(x_parents(i)) + n_i`` on a DAG.
Subclasses (the simulator's ground truth, the zero-shot inferred SCM, least squares on the parents, the
DoWhy wrapper) provide two array functions in the user's units:

- ``mechanism_array(x)``: ``f_i(x_pa(i))`` for every node at once, shape ``(rows, d)``;
- ``draw_noise_array(n, rng)``: ``n`` fresh noise rows, shape ``(n, d)``.

Everything else (noise abduction, fixed-point sampling, hard and shift interventions, counterfactuals, the
DataFrame plumbing with the caller's index preserved) lives here once.
"""

from __future__ import annotations

import copy
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from numbers import Real

import networkx as nx
import numpy as np
import pandas as pd

from condfip.errors import ExtrapolationWarning, InputError

Intervention = float | Callable[[np.ndarray], np.ndarray]
Interventions = Mapping[str, Intervention]


def topological_generations(graph: nx.DiGraph, columns: list[str]) -> list[np.ndarray]:
    """Column indices grouped by generation: generation g holds the nodes whose longest path from a root has
    g edges, so all their parents lie in earlier generations. There are longest path + 1 of them: the passes a
    full-update fixed point needs on a DAG."""
    position = {str(c): j for j, c in enumerate(columns)}
    return [np.array(sorted(position[str(v)] for v in gen)) for gen in nx.topological_generations(graph)]


def ancestral_columns(scm, targets: list[str]) -> np.ndarray:
    """Indices of ``targets`` and all their ancestors: the only columns a target's value depends on."""
    keep = set(targets)
    for target in targets:
        keep |= {str(v) for v in nx.ancestors(scm._graph, target)}
    return np.array(sorted(scm.columns.index(c) for c in keep))


def random_generator(seed, what: str = "seed") -> np.random.Generator:
    """``np.random.default_rng(seed)`` for a seed that is None, a non-negative integer or a Generator; anything
    else (a negative number, a float, a string) is an InputError naming ``what``."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"{what} must be a non-negative integer (or None), got {seed!r}; fix: pass e.g. {what}=0")
    return np.random.default_rng(int(seed))


def draw_from_pool(noise: np.ndarray, n: int, rng: np.random.Generator, noise_model: str) -> np.ndarray:
    """``n`` fresh noise rows from a pool of abducted noise rows: per node, its marginal resampled by the
    inverse CDF (``"empirical"``) or a Gaussian with its mean and standard deviation (``"gaussian"``)."""
    if noise_model == "gaussian":
        return noise.mean(axis=0) + noise.std(axis=0, ddof=1) * rng.standard_normal((n, noise.shape[1]))
    u = rng.random((n, noise.shape[1]))
    return np.stack([np.quantile(noise[:, j], u[:, j]) for j in range(noise.shape[1])], axis=1)


def _beyond(values: np.ndarray, low: float, high: float, std: float) -> tuple[int, float, str]:
    """How many ``values`` lie outside [low, high], the farthest distance in SDs and on which side."""
    above, below = float(values.max()) - high, low - float(values.min())
    count = int(((values < low) | (values > high)).sum())
    side = "above its largest" if above >= below else "below its smallest"
    return count, max(above, below, 0.0) / std, side


def _sds(far: float) -> str:
    """How far beyond the range, in context SDs: one decimal, significant digits when below 0.1 or huge."""
    return f"{far:.1f}" if 0.1 <= far < 1e4 else f"{far:.2g}"


class SCM(ABC):
    """Base class: a DAG over named columns plus mechanisms and a noise law (see module docstring)."""

    def __init__(self, graph: nx.DiGraph, columns: list[str], default_n: int = 1000):
        if sorted(map(str, graph.nodes)) != sorted(map(str, columns)):
            raise InputError("the graph's nodes and the columns differ; pass a graph over exactly these columns")
        self._graph = nx.DiGraph(graph)
        self.columns = [str(c) for c in columns]
        self.default_n = int(default_n)
        self.interventions: dict[str, Intervention] = {}
        self._generations = topological_generations(self._graph, self.columns)

    # ---- what a subclass provides -------------------------------------------------------------------
    @abstractmethod
    def mechanism_array(self, x: np.ndarray) -> np.ndarray:
        """f(x) for all nodes, shape (rows, d), in the user's units; node j of f depends on parents of j only."""

    @abstractmethod
    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n fresh noise rows, shape (n, d), in the user's units."""

    def value_range(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(smallest, largest, standard deviation) per column of the rows the mechanisms were learned from, or
        None when unknown. Where known, requests beyond the range get an :class:`ExtrapolationWarning`."""
        return None

    def mechanism_nodes_array(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """f(x) for the column indices ``nodes`` only, shape (rows, len(nodes)). Subclasses whose mechanisms
        are cheaper per node override it; the fixed point calls it once per topological generation."""
        return self.mechanism_array(x)[:, nodes]

    def mechanism_by_generation(self, x: np.ndarray) -> np.ndarray:
        """f(x) assembled from ``mechanism_nodes_array`` one topological generation at a time: the same calls
        ``solve`` makes, so a subclass whose ``mechanism_array`` returns this gets exact round trips
        ``sample(noise=noise(x)) == x``."""
        out = np.empty_like(x, dtype=np.float64)
        for nodes in self._generations:
            out[:, nodes] = self.mechanism_nodes_array(x, nodes)
        return out

    # ---- the interface ------------------------------------------------------------------------------
    @property
    def graph(self) -> nx.DiGraph:
        """The causal DAG (a copy; hard interventions remove the intervened nodes' incoming edges)."""
        g = nx.DiGraph(self._graph)
        for node, value in self.interventions.items():
            if not callable(value):
                g.remove_edges_from(list(g.in_edges(node)))
        return g

    def mechanism(self, data) -> pd.DataFrame:
        """f_i(parents_i) evaluated on the rows of ``data`` (observational mechanisms)."""
        x, index = self._as_array(data, "data")
        return self._frame(self.mechanism_array(x), index)

    def noise(self, data) -> pd.DataFrame:
        """Abducted noise ``x - f(x)`` for the rows of ``data`` (observational mechanisms)."""
        x, index = self._as_array(data, "data")
        return self._frame(x - self.mechanism_array(x), index)

    def sample(self, n: int | None = None, *, noise=None, seed: int | None = None) -> pd.DataFrame:
        """Samples of this SCM (with its interventions). Given ``noise`` rows, pushes them through the
        mechanisms (the result keeps their index); otherwise draws ``n`` fresh noise rows from ``seed``."""
        if noise is not None:
            eps, index = self._as_array(noise, "noise")
            if n is not None and n != len(eps):
                raise InputError(f"n={n} but {len(eps)} noise rows were given; pass one or the other")
        else:
            eps, index = self.fresh_noise(self.default_n if n is None else n, random_generator(seed)), None
        return self._frame(self.solve(eps), index)

    def fresh_noise(self, n: int, rng: np.random.Generator, what: str = "n") -> np.ndarray:
        """``n`` fresh noise rows, after checking that ``n`` (named ``what`` in errors) is a positive integer
        and that ``n`` generated rows fit in memory."""
        from condfip.memory import check_rows_memory

        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InputError(f"{what} must be a positive integer, got {n!r}; fix: pass e.g. {what}=1000")
        check_rows_memory(int(n), len(self.columns), what)
        return self.draw_noise_array(int(n), rng)

    def do(self, interventions: Interventions) -> SCM:
        """A new SCM under interventions ``{node: value}`` (hard) or ``{node: callable}`` (shift: the
        callable maps the node's pre-intervention value to its new value, in the user's units)."""
        checked = self._check_interventions(interventions)
        self._warn_hard_beyond_range(checked)
        new = copy.copy(self)
        new.interventions = {**self.interventions, **checked}
        return new

    def counterfactual(self, data, interventions: Interventions) -> pd.DataFrame:
        """Counterfactual rows: abduct the noise of each factual row, then replay it under ``interventions``."""
        return self.do(interventions).sample(noise=self.noise(data))

    # ---- the fixed point ----------------------------------------------------------------------------
    def solve(self, eps: np.ndarray) -> np.ndarray:
        """Solve ``x = f(x) + eps`` with the interventions applied. On a DAG, longest path + 1 passes reach
        the exact fixed point, each pass settling one more topological generation; so each pass computes
        that generation only (its parents are settled), then applies its shift and hard interventions."""
        eps = np.asarray(eps, dtype=np.float64)
        hard = {self.columns.index(k): v for k, v in self.interventions.items() if not callable(v)}
        shift = {self.columns.index(k): v for k, v in self.interventions.items() if callable(v)}
        x = eps.copy()
        for nodes in self._generations:
            x[:, nodes] = self.mechanism_nodes_array(x, nodes) + eps[:, nodes]
            for j in nodes:
                if j in shift:
                    x[:, j] = self._shift_values(j, shift[j], x[:, j].copy())
                elif j in hard:
                    x[:, j] = hard[j]
        self._check_finite(x, "the result")
        return x

    def _shift_values(self, j: int, shift: Callable, before: np.ndarray) -> np.ndarray:
        """The shift callable of column ``j`` applied to its pre-intervention values, checked: numbers, one per
        row (or one for all); a result beyond the known range warns."""
        node = self.columns[j]
        try:
            result = np.asarray(shift(before))
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - a user's callable can raise anything
            raise InputError(f"the shift callable for node {node!r} failed ({type(err).__name__}: {err}); fix: "
                             f"pass a function of the node's values, e.g. lambda x: x + 1") from None
        if result.dtype.kind not in "biuf":
            raise InputError(f"the shift callable for node {node!r} returned {result.dtype} values, not numbers; "
                             f"fix: return numbers, e.g. lambda x: x + 1")
        if result.size not in (1, len(before)):
            raise InputError(f"the shift callable for node {node!r} returned {result.size} values for "
                             f"{len(before)} rows; fix: return one value per row, e.g. lambda x: x + 1")
        values = np.broadcast_to(result.astype(np.float64).reshape(-1), before.shape)
        self._check_finite(values[:, None], f"the shift callable for node {node!r}", columns=[node])
        known = self.value_range()
        if known is not None:
            count, far, side = _beyond(values, known[0][j], known[1][j], known[2][j])
            if count:
                warnings.warn(f"the shift of {node!r} moves {count} of {len(values)} rows beyond the context's "
                              f"range, up to {_sds(far)} context SDs {side} value: the mechanisms there are an "
                              f"extrapolation, so the answer is a guess", ExtrapolationWarning, stacklevel=5)
        return values

    def _check_finite(self, x: np.ndarray, what: str, columns: list[str] | None = None) -> None:
        """A non-finite result is an error (never NaN rows): name the columns and the likely cause."""
        finite = np.isfinite(x).all(axis=0)
        if not finite.all():
            bad = [c for c, ok in zip(columns or self.columns, finite, strict=True) if not ok]
            raise InputError(f"{what} is not finite (NaN or inf) for node(s) {bad}: the values overflowed, "
                             f"typically because an intervention or a row lies far beyond the data's range; "
                             f"fix: use intervention values and rows within or near the data's range")

    # ---- plumbing -----------------------------------------------------------------------------------
    def _check_interventions(self, interventions: Interventions) -> dict[str, Intervention]:
        if not isinstance(interventions, Mapping) or not interventions:
            raise InputError("interventions must be a non-empty dict {node: value or callable}")
        out: dict[str, Intervention] = {}
        for node, value in interventions.items():
            if str(node) not in self.columns:
                raise InputError(f"unknown intervention node {node!r}; choose one of {self.columns}")
            if callable(value):
                out[str(node)] = value
                continue
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
                raise InputError(f"intervention value for {node!r} must be a finite number, got {value!r}")
            out[str(node)] = float(value)
        return out

    def _warn_hard_beyond_range(self, interventions: dict[str, Intervention]) -> None:
        known = self.value_range()
        if known is None:
            return
        for node, value in interventions.items():
            j = self.columns.index(node)
            if callable(value):
                continue
            count, far, side = _beyond(np.array([value]), known[0][j], known[1][j], known[2][j])
            if count:
                edge = known[1][j] if side.startswith("above") else known[0][j]
                warnings.warn(f"do({node}={value:g}) is {_sds(far)} context SDs {side} context value ({edge:.4g}): "
                              f"the mechanisms there are an extrapolation, so the answer is a guess",
                              ExtrapolationWarning, stacklevel=4)

    def _warn_rows_beyond_range(self, x: np.ndarray, source: str) -> None:
        """One warning for all the nodes whose values in ``x`` leave the known range (count, farthest, side)."""
        known = self.value_range()
        if known is None or not len(x):
            return
        parts = []
        for j, node in enumerate(self.columns):
            count, far, side = _beyond(x[:, j], known[0][j], known[1][j], known[2][j])
            if count:
                parts.append(f"{node!r} ({count} row(s), up to {_sds(far)} context SDs {side} value)")
        if parts:
            warnings.warn(f"rows of {source} ({len(x)} in all) lie beyond the context's range of {', '.join(parts)}: "
                          f"the mechanisms there are an extrapolation, so the answers on those rows are a guess",
                          ExtrapolationWarning, stacklevel=4)

    def _as_array(self, data, what: str) -> tuple[np.ndarray, pd.Index | None]:
        if isinstance(data, pd.DataFrame):
            missing = [c for c in self.columns if c not in map(str, data.columns)]
            if missing:
                raise InputError(f"{what} lacks columns {missing}; pass a DataFrame with columns {self.columns}")
            frame = data.rename(columns=str)[self.columns]
            try:
                x = frame.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise InputError(f"{what} has non-numeric values ({err}); pass numbers only") from None
            index = data.index
        else:
            x = np.asarray(data, dtype=np.float64)
            index = None
            if x.ndim != 2 or x.shape[1] != len(self.columns):
                raise InputError(f"{what} must have shape (rows, {len(self.columns)}), got {x.shape}")
        if not np.isfinite(x).all():
            bad = [c for c, ok in zip(self.columns, np.isfinite(x).all(axis=0)) if not ok]
            raise InputError(f"{what} has NaN or inf in columns {bad}; drop or impute those rows")
        if what == "data":
            source = data.attrs.get("source", "the data") if isinstance(data, pd.DataFrame) else "the data"
            self._warn_rows_beyond_range(x, source)
        return x, index

    def _frame(self, x: np.ndarray, index: pd.Index | None) -> pd.DataFrame:
        self._check_finite(x, "the result")
        return pd.DataFrame(x, columns=self.columns, index=index)
