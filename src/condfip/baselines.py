"""Reference estimators behind the one SCM interface (``condfip.scm.SCM``), for the benchmark and for users.

- ``OLSParentsSCM``: per node, least squares with an intercept on the node's parents in the given DAG
  (a root's mechanism is its mean). Fresh noise: each node's context residuals, resampled independently.
- ``ZeroNoiseSCM``: the floor estimator that calls the data noiseless. Its abducted noise is 0 for every node
  with parents (a root's noise is its residual around its mean, as for ``OLSParentsSCM``). When it generates,
  it uses the least-squares mechanisms and sets the noise of every node with parents to 0, whatever noise it
  is handed: only root noise moves its samples. Counterfactuals therefore replay the least-squares
  predictions.
- ``DoWhySCM``: a fitted DoWhy-gcm ``InvertibleStructuralCausalModel`` (``gcm.auto.assign_causal_mechanisms``
  + ``gcm.fit``). Conventions, which follow DoWhy's own:

  * a root node's noise IS its value (DoWhy models a root by its empirical distribution, and its
    ``counterfactual_samples`` reconstructs a root's noise as the observed value), so ``mechanism_array``
    returns 0 for a root and ``noise`` returns the root's observed value. Whoever hands this SCM noise rows
    (``sample(noise=...)``) must put the roots' VALUES in the root columns (``roots_as_values`` is True).
  * a node with parents: its mechanism is ``evaluate(parents, 0)`` of its fitted model, its noise is the
    model's ``estimate_noise(target, parents)``, and generation evaluates ``evaluate(parents, noise)`` node by
    node in topological order (exact on a DAG, one model evaluation per node).

  Which mechanisms can auto-assignment produce? In dowhy 0.14, ``assign_causal_mechanisms`` gives a root an
  ``EmpiricalDistribution`` and a node with parents an ``AdditiveNoiseModel`` (continuous target), a
  ``DiscreteAdditiveNoiseModel`` (integer-valued target) or a ``ClassifierFCM`` (categorical target); the
  regressor inside is picked by 5-fold cross-validation (``AssignmentQuality.GOOD``, the default: linear
  regression, histogram gradient boosting, and for at most 5 parents a polynomial-features regression).
  Post-nonlinear models are never auto-assigned. On continuous data every node with parents is therefore an
  additive-noise model, ``x = f(parents) + n``, exactly this package's SCM form.
  ``DoWhySCM`` checks this and refuses other mechanism classes rather than pretending they are additive.

DoWhy is an optional dependency (``pip install condfip[dowhy]``); it is imported only when a ``DoWhySCM`` is
fitted. ``DoWhyWorker`` runs the fit in a separate process so that a caller can put a time limit on it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator

import networkx as nx
import numpy as np
import pandas as pd

from condfip.errors import InputError
from condfip.scm import SCM


def parent_lists(graph: nx.DiGraph, columns: list[str]) -> list[list[int]]:
    """For each column (by position), the positions of its parents in sorted-name order (DoWhy's order)."""
    pos = {c: k for k, c in enumerate(columns)}
    return [[pos[str(p)] for p in sorted(map(str, graph.predecessors(c)))] for c in columns]


def fit_on_parents(x: np.ndarray, targets: np.ndarray, parents: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with intercept of each ``targets[:, i]`` on ``x[:, parents[i]]``: ``(coef, intercept)``
    with ``coef[j, i]`` the weight of parent j for column i (zero off the parents), so the fit is
    ``intercept + x @ coef``."""
    n, d = targets.shape
    coef, intercept = np.zeros((x.shape[1], d)), np.zeros(d)
    for i, cols in enumerate(parents):
        beta, *_ = np.linalg.lstsq(np.column_stack([np.ones(n), x[:, cols]]), targets[:, i], rcond=None)
        intercept[i] = beta[0]
        coef[cols, i] = beta[1:]
    return coef, intercept


def _as_frame(data, what: str = "data") -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame whose columns are the graph's nodes")
    return data.rename(columns=str)


# ---- least squares on the parents -------------------------------------------------------------------
class OLSParentsSCM(SCM):
    """Least squares with intercept on each node's parents (see the module docstring)."""

    roots_as_values = False

    def __init__(self, graph: nx.DiGraph, columns: list[str], coef: np.ndarray, intercept: np.ndarray,
                 residuals: np.ndarray, default_n: int = 1000):
        super().__init__(graph, columns, default_n=default_n)
        self.coef = np.asarray(coef, dtype=np.float64)  # (d, d): coef[j, i] = weight of parent j in node i
        self.intercept = np.asarray(intercept, dtype=np.float64)  # (d,)
        self.residuals = np.asarray(residuals, dtype=np.float64)  # (n_context, d)
        self.has_parents = np.array([self._graph.in_degree(c) > 0 for c in self.columns])

    @classmethod
    def fit(cls, data: pd.DataFrame, graph: nx.DiGraph) -> OLSParentsSCM:
        frame = _as_frame(data)
        columns = [str(c) for c in frame.columns]
        x = frame.to_numpy(dtype=np.float64)
        coef, intercept = fit_on_parents(x, x, parent_lists(nx.relabel_nodes(graph, str), columns))
        residuals = x - (intercept + x @ coef)
        return cls(graph, columns, coef, intercept, residuals, default_n=len(x))

    def mechanism_array(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + np.asarray(x, dtype=np.float64) @ self.coef

    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, len(self.residuals), size=(n, self.residuals.shape[1]))
        return np.take_along_axis(self.residuals, rows, axis=0)


class ZeroNoiseSCM(OLSParentsSCM):
    """The estimator that calls the data noiseless (see the module docstring)."""

    def noise(self, data) -> pd.DataFrame:
        out = super().noise(data)
        out.loc[:, [c for c, p in zip(self.columns, self.has_parents) if p]] = 0.0
        return out

    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        eps = super().draw_noise_array(n, rng)
        eps[:, self.has_parents] = 0.0
        return eps

    def solve(self, eps: np.ndarray) -> np.ndarray:
        eps = np.array(eps, dtype=np.float64)
        eps[:, self.has_parents] = 0.0
        return super().solve(eps)


# ---- DoWhy-gcm --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _seeded_numpy(rng: np.random.Generator) -> Iterator[None]:
    """DoWhy draws from numpy's global state: seed it from ``rng`` and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(int(rng.integers(2**32 - 1)))
    try:
        yield
    finally:
        np.random.set_state(state)


def fit_dowhy_model(data: pd.DataFrame, graph: nx.DiGraph, quality: str = "GOOD", seed: int = 0):
    """``InvertibleStructuralCausalModel`` + ``assign_causal_mechanisms`` + ``fit`` on ``data`` (in process).
    DoWhy's model selection draws from numpy's global state; it is seeded by ``seed`` (and restored after)."""
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    frame = _as_frame(data)
    model = gcm.InvertibleStructuralCausalModel(nx.relabel_nodes(nx.DiGraph(graph), str))
    with _seeded_numpy(np.random.default_rng(seed)):
        gcm.auto.assign_causal_mechanisms(model, frame, quality=getattr(gcm.auto.AssignmentQuality, quality))
        gcm.fit(model, frame)
    return model


class DoWhySCM(SCM):
    """A fitted DoWhy-gcm invertible SCM behind condfip's SCM interface (see the module docstring)."""

    roots_as_values = True

    def __init__(self, model, columns: list[str], default_n: int = 1000):
        from dowhy.gcm import AdditiveNoiseModel, DiscreteAdditiveNoiseModel

        super().__init__(model.graph, columns, default_n=default_n)
        self.model = model
        self.parents = parent_lists(self._graph, self.columns)
        self.order = [self.columns.index(c) for c in nx.topological_sort(self._graph)]
        self.mechanisms = [model.causal_mechanism(c) for c in self.columns]
        for c, parents, mech in zip(self.columns, self.parents, self.mechanisms):
            discrete = isinstance(mech, DiscreteAdditiveNoiseModel)
            if parents and (discrete or not isinstance(mech, AdditiveNoiseModel)):
                raise InputError(f"DoWhy assigned {type(mech).__name__} to node {c!r}; only continuous "
                                 "additive-noise models fit condfip's SCM form (pass continuous, non-integer "
                                 "data)")

    @classmethod
    def fit(cls, data: pd.DataFrame, graph: nx.DiGraph, quality: str = "GOOD", seed: int = 0) -> DoWhySCM:
        frame = _as_frame(data)
        return cls(fit_dowhy_model(frame, graph, quality, seed), list(frame.columns), default_n=len(frame))

    def mechanism_names(self) -> dict[str, str]:
        """The class (and regressor) DoWhy assigned to each node."""
        return {c: str(m) for c, m in zip(self.columns, self.mechanisms)}

    def node_mechanism(self, i: int, x: np.ndarray) -> np.ndarray:
        """f_i(x_pa(i)) (0 for a root: its noise is its value)."""
        if not self.parents[i]:
            return np.zeros(len(x))
        zeros = np.zeros((len(x), 1))
        return np.asarray(self.mechanisms[i].evaluate(x[:, self.parents[i]], zeros)).reshape(-1)

    def mechanism_array(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.column_stack([self.node_mechanism(i, x) for i in range(len(self.columns))])

    def noise(self, data) -> pd.DataFrame:
        x, index = self._as_array(data, "data")
        eps = x.copy()  # roots: the observed value
        for i, parents in enumerate(self.parents):
            if parents:
                eps[:, i] = np.asarray(self.mechanisms[i].estimate_noise(x[:, i], x[:, parents])).reshape(-1)
        return self._frame(eps, index)

    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        eps = np.empty((n, len(self.columns)))
        with _seeded_numpy(rng):
            for i, (parents, mech) in enumerate(zip(self.parents, self.mechanisms)):
                draw = mech.draw_noise_samples(n) if parents else mech.draw_samples(n)
                eps[:, i] = np.asarray(draw, dtype=np.float64).reshape(-1)
        return eps

    def solve(self, eps: np.ndarray) -> np.ndarray:
        """One pass in topological order: ``x_i = evaluate(x_pa(i), eps_i)`` with interventions applied."""
        eps = np.asarray(eps, dtype=np.float64)
        x = np.zeros_like(eps)
        for i in self.order:
            name = self.columns[i]
            value = self.interventions.get(name)
            if value is not None and not callable(value):
                x[:, i] = value
                continue
            if self.parents[i]:
                xi = self.mechanisms[i].evaluate(x[:, self.parents[i]], eps[:, i:i + 1])
                x[:, i] = np.asarray(xi, dtype=np.float64).reshape(-1)
            else:
                x[:, i] = eps[:, i]
            if value is not None:
                x[:, i] = np.asarray(value(x[:, i].copy()), dtype=np.float64).reshape(-1)
        return x


# ---- fitting DoWhy in a worker process (time limits) ----------------------------------------------------
class FitTimeout(RuntimeError):
    """The fit ran past its time limit (the worker process was killed); ``seconds`` is the limit."""

    def __init__(self, seconds: float):
        super().__init__(f"DoWhy fit exceeded {seconds:.0f} s")
        self.seconds = float(seconds)


def _send(stream, obj) -> None:
    payload = pickle.dumps(obj)
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def _recv(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)


def _worker_main() -> None:
    """The worker process: reads fit jobs from stdin, answers on the original stdout (anything the fit prints
    goes to stderr)."""
    jobs, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    import dowhy.gcm  # noqa: F401 - import before announcing readiness, so fits are timed without it

    _send(answers, ("ready", None))
    while True:
        try:
            job = _recv(jobs)
        except EOFError:
            return
        data, edges, nodes, quality, seed = job
        graph = nx.DiGraph()
        graph.add_nodes_from(nodes)
        graph.add_edges_from(edges)
        try:
            _send(answers, ("ok", fit_dowhy_model(data, graph, quality, seed)))
        except Exception as err:  # noqa: BLE001 - reported to the parent as a failed fit
            _send(answers, ("error", f"{type(err).__name__}: {err}"))


class DoWhyWorker:
    """Fits DoWhy models in a long-lived child process (a fresh interpreter in its own process group), so a
    fit can be given a time limit: past it the process group is killed (a new worker starts on the next fit)
    and ``FitTimeout`` is raised. A failure inside the fit is raised as ``RuntimeError`` with DoWhy's
    message."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600.0) -> None:
        """Start the worker (if it is not running) and wait until it has imported DoWhy."""
        if self._proc is not None and self._proc.poll() is None:
            return
        code = "from condfip.baselines import _worker_main; _worker_main()"
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        try:
            if not ready or _recv(self._proc.stdout)[0] != "ready":
                raise EOFError
        except EOFError:
            self.close(kill=True)
            raise RuntimeError("the DoWhy worker process did not start (is dowhy installed?)") from None

    def fit(self, data: pd.DataFrame, graph: nx.DiGraph, *, timeout: float | None = None,
            quality: str = "GOOD", seed: int = 0) -> DoWhySCM:
        frame = _as_frame(data)
        self.start()
        nodes = [str(v) for v in graph.nodes]
        edges = [(str(a), str(b)) for a, b in graph.edges]
        try:
            _send(self._proc.stdin, (frame, edges, nodes, quality, seed))
            ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
            if not ready:
                self.close(kill=True)
                raise FitTimeout(timeout)
            status, payload = _recv(self._proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            self.close(kill=True)
            raise RuntimeError("the DoWhy worker process died during the fit") from None
        if status != "ok":
            raise RuntimeError(payload)
        return DoWhySCM(payload, list(frame.columns), default_n=len(frame))

    def close(self, kill: bool = False) -> None:
        """Stop the worker (``kill``: at once, with everything it started)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if not kill:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close(kill=True)
