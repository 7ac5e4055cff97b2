"""Kernel mechanisms: each node's f_i(x_parents) as a kernel ridge regression on the context rows, in closed form.

Generation (samples, interventions, counterfactuals) needs f_i at rows the context never held: parent values
beyond the context's range, combinations it never saw. The network's decoder T sees the context only through a
pooled code and was measured 2.5x worse than the encoder head (docs/training-log.md, "kernel mechanisms"); this
module answers the same question by regression on the context rows themselves. For node i with parents P
(standardised units), on the n context rows ``A = x[:, P]``, one of two models:

    linear:  f_i(z) = k(z, A) @ alpha,  k(a, c) = 1 + a.c                                (a ridge line)
    smooth:  f_i(z) = k(z, A) @ alpha,  k(a, c) = 1 + a.c + exp(-sum_j (a_j - c_j)^2 / (2 ell_j^2))
    alpha = (K + ridge I)^-1 x_i,  K = k(A, A);  stored as a line ``trend`` = [1, A]' alpha plus RBF weights

The model, its length-scale (first one for all parents, ell = r sqrt(|P|), r in RADII) and the ridge are chosen
per node by exact leave-one-out error on the context, in closed form (one eigendecomposition of K per kernel
gives every ridge's), and the line is kept unless a curve's LOO error is lower by more than one standard error
of the paired difference: a gain within the noise does not buy a curve that can turn beyond the context (on a
linear bench SCM such a curve, 1.5% better in LOO, extrapolated to 60x the line's error; docs/training-log.md).
A curve then gets a length-scale per parent, read off how much the curve moves along each parent and kept only
where it beats the single one by the same rule (``select``). Beyond the context's range a curve answers as
``choose_beyond`` decided; a line continues. Nothing is tuned to a benchmark. The choice reads at most
``SELECTION_ROWS`` context rows (evenly spaced; the eigendecompositions grow with n^3); the chosen regression is
then solved on all of them. This is a classical, closed-form per-dataset fit (no gradient step, no network),
not the paper's regression-free decoder; ``InferredSCM(mechanisms="kernel")`` (the default) uses it. Roots have no mechanism
(f_i = the context mean, 0 here).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

# what an inferred SCM can generate through (``InferredSCM(mechanisms=...)``, stored in saved SCMs): these
# regressions or the network's decoder
MECHANISMS = ("kernel", "network")
RADII = (0.5, 1.0, 2.0)  # RBF length-scales in units of sqrt(number of parents) (standardised data)
RIDGES = tuple(10.0 ** np.arange(-5.0, 1.01, 0.5))
PER_PARENT_STEPS = 3  # refinements of a curve's length-scales, one per parent (select)
RELEVANCE_FLOOR = 0.05  # a parent's relevance weight is at least this share of the mean (per_parent_unit)
SELECTION_ROWS = 400
BEYOND = ("flat", "line", "continue")  # how a curve answers beyond the context's range (NodeFit)
HELD_OUT = 0.3  # share of context rows, farthest out, that choose_beyond scores on
CERTAIN_LINE = 0.01  # a line whose best curve lowers its LOO MSE by less than this squared abducts noise (certain)
RIVAL_FACTOR = 4.0  # ... unless its LOO RMSE is over this many times another model's error on the context rows
# one fit at a time limits the BLAS pool (threadpoolctl's limit is process-wide: two overlapping limits could
# restore each other's values and leave BLAS at one thread)
_BLAS_LIMIT = threading.Lock()


def rbf(a: np.ndarray, c: np.ndarray, lengthscale: float | np.ndarray) -> np.ndarray:
    """exp(-sum_j (a_j - c_j)^2 / (2 lengthscale_j^2)) between rows a (n, p) and c (m, p): (n, m);
    ``lengthscale``: one for every parent, or one per parent (p,)."""
    if np.ndim(lengthscale) > 0:
        a, c, lengthscale = a / lengthscale, c / lengthscale, 1.0
    sq = (a * a).sum(1)[:, None] + (c * c).sum(1)[None, :] - 2.0 * (a @ c.T)
    return np.exp(-np.maximum(sq, 0.0) / (2.0 * lengthscale * lengthscale))


def with_intercept(a: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(a)), a])


@dataclass(frozen=True)
class NodeFit:
    """One node's regression on the rows ``rows`` (its parents' context values): length-scale (None: linear),
    ridge, line coefficients ``trend`` on [1, z], RBF dual weights ``alpha`` (None when linear) and the
    leave-one-out RMSE it was chosen by (standardised units); ``curve_gain``: the share by which the best curve's
    LOO error was below the line's (``select``). A curve (``alpha`` set) answers beyond its context's
    range per parent, ``low`` .. ``high``, as ``beyond`` says (one of ``BEYOND``, chosen by ``choose_beyond``):
    ``flat`` evaluates the curve at the parents clipped into that range; ``line`` lets the RBF term fade into
    the line ``trend``; ``continue`` adds to the clipped curve the line's slope times the distance beyond."""

    parents: np.ndarray
    lengthscale: float | np.ndarray | None
    ridge: float
    rows: np.ndarray
    trend: np.ndarray
    alpha: np.ndarray | None
    loo_rmse: float
    beyond: str = "line"
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    curve_gain: float = 0.0

    def predict(self, z: np.ndarray) -> np.ndarray:
        """f(z) for rows z of the parents' values (m, p): (m,). Far beyond the context the RBF term is 0 (its
        squared distances may overflow to inf, whose exp is that exact limit); an overflowing line gives inf,
        which the SCM reports as a non-finite result."""
        if self.alpha is None or self.beyond == "line":
            return self._evaluate(z)
        clipped = np.clip(z, self.low, self.high)
        if self.beyond == "flat":
            return self._evaluate(clipped)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._evaluate(clipped) + (z - clipped) @ self.trend[1:]

    def _evaluate(self, z: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            out = with_intercept(z) @ self.trend
            if self.alpha is not None:
                out = out + rbf(z, self.rows, self.lengthscale) @ self.alpha
        return out

    def refit(self, rows: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> NodeFit:
        """The same model (length-scale, ridge, behaviour beyond the range) solved on other rows, whose range it
        answers within; ``weights``: row multiplicities (rows of weight 0 are outside the range)."""
        if weights is not None:
            keep = np.asarray(weights) > 0
            rows, y, weights = rows[keep], y[keep], np.asarray(weights)[keep]
        trend, alpha = solve(rows, y, self.lengthscale, self.ridge, weights)
        return replace(self, rows=rows, trend=trend, alpha=alpha, low=rows.min(0), high=rows.max(0))


def fit_node(parents: np.ndarray, a: np.ndarray, y: np.ndarray, lengthscale: float | np.ndarray | None, ridge: float,
             loo_rmse: float, beyond: str = "line") -> NodeFit:
    """The model solved on rows a -> y, with their range per parent."""
    trend, alpha = solve(a, y, lengthscale, ridge)
    return NodeFit(parents, lengthscale, ridge, a, trend, alpha, loo_rmse, beyond, a.min(0), a.max(0))


def choose_beyond(a: np.ndarray, y: np.ndarray, lengthscale: float | np.ndarray, ridge: float) -> str:
    """How a curve answers beyond the context's range (one of ``BEYOND``), by its error on the context rows
    farthest out: the ``HELD_OUT`` share of rows with the largest standardised distance from the parents'
    medians (largest over parents) is held out, the curve solved on the rest, and each behaviour scored on the
    held-out rows, beyond the rest's range. ``flat`` stays unless another is better by more than one standard
    error of the paired difference (bounded mechanisms are the prior's nonlinear ones; a line that really
    continues shows it at the edges)."""
    distance = np.abs((a - np.median(a, 0)) / (a.std(0) + 1e-12)).max(1)
    order = np.argsort(distance, kind="stable")
    held = max(5, round(HELD_OUT * len(a)))
    inner, outer = order[:-held], order[-held:]
    fit = fit_node(np.arange(a.shape[1]), a[inner], y[inner], lengthscale, ridge, 0.0)
    errors = {b: (replace(fit, beyond=b).predict(a[outer]) - y[outer]) ** 2 for b in BEYOND}
    best = min(BEYOND, key=lambda b: errors[b].mean())
    gain = errors["flat"] - errors[best]
    return best if best != "flat" and gain.mean() > gain.std(ddof=1) / np.sqrt(len(gain)) else "flat"


def _linear_loo(a: np.ndarray, y: np.ndarray):
    """(ridge, LOO residuals) of every ridge for the ridge regression on [1, a] (kernel 1 + a.b), exact and in
    closed form, in the primal (p + 1 dimensions, no n x n matrix): with the hat matrix H = X (X'X + ridge I)^-1
    X' of X = [1, a] (thin SVD X = U S V'), the LOO residual is (y - H y)_j / (1 - H_jj); the same numbers as
    the dual alpha_j / ((K + ridge I)^-1)_jj, since (K + ridge I)^-1 = (I - H) / ridge."""
    u, s, _ = np.linalg.svd(with_intercept(a), full_matrices=False)
    s2, projected, squared = s * s, u.T @ y, u * u
    for ridge in RIDGES:
        shrink = s2 / (s2 + ridge)
        yield float(ridge), (y - u @ (shrink * projected)) / (1.0 - squared @ shrink)


def _smooth_loo(a: np.ndarray, y: np.ndarray, lengthscale: float | np.ndarray):
    """(ridge, LOO residuals) of every ridge for the line + RBF kernel, exact and in closed form (as linear)."""
    eigval, eigvec = np.linalg.eigh(1.0 + a @ a.T + rbf(a, a, lengthscale))
    eigval, projected, squared = np.maximum(eigval, 0.0), eigvec.T @ y, eigvec * eigvec
    for ridge in RIDGES:
        w = 1.0 / (eigval + ridge)
        yield float(ridge), (eigvec @ (w * projected)) / (squared @ w)


class Candidate(NamedTuple):
    """One regression scored by leave-one-out: mean squared LOO residual, length-scale (None: the line; a float
    or one per parent), ridge and the LOO residuals."""

    mse: float
    lengthscale: float | np.ndarray | None
    ridge: float
    residuals: np.ndarray


def _best(candidates) -> Candidate:
    return min((Candidate(float(np.mean(r * r)), lengthscale, ridge, r) for lengthscale, ridge, r in candidates),
               key=lambda c: c.mse)


def _smooth(a: np.ndarray, y: np.ndarray, unit: float | np.ndarray) -> Candidate:
    """The best line + RBF regression over the length-scales r * unit, r in RADII, and every ridge."""
    return _best((r * unit, ridge, res) for r in RADII for ridge, res in _smooth_loo(a, y, r * unit))


def _beats(gain: np.ndarray) -> bool:
    """Is the mean of these per-row gains in squared LOO residual above one standard error (not noise)?"""
    return bool(gain.mean() > gain.std(ddof=1) / np.sqrt(len(gain)))


def relevance(a: np.ndarray, y: np.ndarray, lengthscale: float | np.ndarray, ridge: float) -> np.ndarray:
    """How much the RBF term of the regression on rows a -> y varies along each parent: its squared partial
    derivative, averaged over the rows, (p,). For a smooth random function with a length-scale per parent this
    is proportional to 1 / lengthscale_j^2."""
    _, alpha = solve(a, y, lengthscale, ridge)
    scale = np.broadcast_to(np.asarray(lengthscale, dtype=np.float64), (a.shape[1],))
    weighted = rbf(a, a, lengthscale) * alpha[None, :]  # row m, centre k: alpha_k K(a_m, a_k)
    gradient = (weighted @ a - weighted.sum(1)[:, None] * a) / scale**2  # d/dz_j at z = a_m
    return (gradient * gradient).mean(0)


def per_parent_unit(a: np.ndarray, y: np.ndarray, fit: Candidate) -> np.ndarray:
    """Length-scale units, one per parent, from the curve ``fit``: sqrt(|P|) / w_j with w_j the root of parent j's
    relevance relative to the mean (floored at ``RELEVANCE_FLOOR``, then rescaled to a root mean square of 1,
    so the radii keep their meaning: a parent that moves the curve more gets a shorter length-scale)."""
    g = relevance(a, y, fit.lengthscale, fit.ridge)
    w = np.sqrt(np.maximum(g / max(float(g.mean()), 1e-300), RELEVANCE_FLOOR**2))
    return np.sqrt(a.shape[1]) / (w / np.sqrt(np.mean(w * w)))


def select(a: np.ndarray, y: np.ndarray) -> tuple[float | np.ndarray | None, float, float, float]:
    """(length-scale: None for the line, a float or one per parent; ridge, LOO RMSE, curve gain) by leave-one-out
    error. The line stays unless the best curve with one length-scale for all parents has a LOO error lower by
    more than one standard error of the paired difference (a gain within the noise does not buy a curve that can
    turn beyond the context). A curve then gets a length-scale per parent, up to ``PER_PARENT_STEPS`` times:
    each parent's relevance is read off the current curve (``per_parent_unit``), the chosen radius is kept on
    those units and the ridges are searched again; a step is kept only if it beats the current curve by the same
    one-SE rule.
    On the prior's RFF mechanisms (one length-scale on the raw parents, which the standardisation turns into a
    different one per parent) this cut the validation suite's error under interventions by a fifth
    (docs/training-log.md, "per-parent length-scales"). Curve gain: how much lower the best one-length-scale
    curve's LOO mean squared error is than the line's, as a share of the line's."""
    p = a.shape[1]
    linear = _best((None, ridge, r) for ridge, r in _linear_loo(a, y))
    smooth = _smooth(a, y, np.sqrt(p))
    gain = linear.residuals**2 - smooth.residuals**2
    curve_gain = float(gain.mean() / max(linear.mse, 1e-300))
    if not _beats(gain):
        return None, linear.ridge, float(np.sqrt(linear.mse)), curve_gain
    radius = smooth.lengthscale / np.sqrt(p)
    for _ in range(PER_PARENT_STEPS if p > 1 else 0):
        unit = per_parent_unit(a, y, smooth)
        refined = _best((radius * unit, ridge, r) for ridge, r in _smooth_loo(a, y, radius * unit))
        if not _beats(smooth.residuals**2 - refined.residuals**2):
            break
        smooth = refined
    lengthscale = smooth.lengthscale if np.ndim(smooth.lengthscale) else float(smooth.lengthscale)
    return lengthscale, smooth.ridge, float(np.sqrt(smooth.mse)), curve_gain


def solve(a: np.ndarray, y: np.ndarray, lengthscale: float | np.ndarray | None, ridge: float,
          weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(trend on [1, a], RBF dual weights or None) of the model on rows a -> y. ``weights`` (row multiplicities)
    make a row count that many times: the ridge on row j becomes ``ridge / weights_j``. Solved in the dual,
    ``alpha = (K + diag)^-1 y``; the line part is ``[1, a]' alpha``."""
    x = with_intercept(a)
    diag = ridge if weights is None else ridge / weights
    if lengthscale is None:  # the same solution in the primal: (X' W X + ridge I)^-1 X' W y, W = weights
        w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
        normal = (x * w[:, None]).T @ x
        normal[np.diag_indices_from(normal)] += ridge
        return np.linalg.solve(normal, x.T @ (w * y)), None
    gram = x @ x.T + rbf(a, a, lengthscale)
    gram[np.diag_indices_from(gram)] += diag
    alpha = np.linalg.solve(gram, y)
    return x.T @ alpha, alpha


class KernelMechanisms:
    """The per-node kernel regressions of one context: ``x`` (n, d) standardised rows, ``adj[j, i]``: j -> i.

    ``workers``: how many nodes are fitted at once, each on one thread with BLAS held to one thread (an n = 400
    eigendecomposition gains nothing from a second BLAS thread; docs/training-log.md, "Speed", 5). The answer
    does not depend on it: every node is the same single-threaded computation whatever the count."""

    def __init__(self, x: np.ndarray, adj: np.ndarray, workers: int = 1):
        x = np.asarray(x, dtype=np.float64)
        rows = np.unique(np.linspace(0, len(x) - 1, min(len(x), SELECTION_ROWS)).round().astype(int))
        nodes = [i for i in range(x.shape[1]) if adj[:, i].any()]

        def fit(i: int) -> NodeFit:
            parents = np.flatnonzero(adj[:, i])
            lengthscale, ridge, loo, gain = select(x[rows][:, parents], x[rows, i])
            beyond = "line" if lengthscale is None else choose_beyond(x[:, parents], x[:, i], lengthscale, ridge)
            return replace(fit_node(parents, x[:, parents], x[:, i], lengthscale, ridge, loo, beyond),
                           curve_gain=gain)

        with (_BLAS_LIMIT, threadpool_limits(limits=1, user_api="blas"),
              ThreadPoolExecutor(max(1, min(workers, len(nodes)))) as pool):
            fitted = list(pool.map(fit, nodes))
        self.fits: dict[int, NodeFit] = dict(zip(nodes, fitted))

    @classmethod
    def _of(cls, fits: dict[int, NodeFit]) -> KernelMechanisms:
        mechanisms = cls.__new__(cls)
        mechanisms.fits = fits
        return mechanisms

    def refit(self, x: np.ndarray, weights: np.ndarray | None = None) -> KernelMechanisms:
        """The same models (each node's kernel, length-scale and ridge) solved on other standardised rows ``x``
        (n, d); ``weights``: row multiplicities (rows of weight 0 are left out)."""
        keep = np.ones(len(x), dtype=bool) if weights is None else np.asarray(weights) > 0
        x, weights = x[keep], None if weights is None else np.asarray(weights)[keep]
        return self._of({i: fit.refit(x[:, fit.parents], x[:, i], weights) for i, fit in self.fits.items()})

    def certain(self, d: int, rival_rmse: np.ndarray | None = None) -> np.ndarray:
        """Which of the d nodes these regressions abduct noise for under ``abduction="auto"`` (bool, (d,)): the
        roots (f = the context mean) and the nodes fitted by a line whose best curve lowered its LOO mean squared
        error by less than ``CERTAIN_LINE`` squared (standardised units: what the line may miss is below about
        0.01 SD). An absolute bound, not a share of the error: a share let noisy nonlinear nodes through, whose
        line missed by 0.1 SD (docs/training-log.md, "auto abduction, an absolute bound"). On the validation
        suite this abduction beats the encoder head on linear mechanisms and ties it on nonlinear ones.

        ``rival_rmse`` (d,): another model's RMSE on the context rows (the encoder head's, standardised units).
        A line whose LOO RMSE is more than ``RIVAL_FACTOR`` times it is not certain however little a curve
        gained: with many parents and few rows the kernel cannot see the curve the line misses (a node with 26
        parents and 400 rows: line LOO 1.0 SD, the encoder head 0.12)."""
        def sure(i: int) -> bool:
            fit = self.fits.get(i)
            return fit is None or (fit.lengthscale is None and fit.curve_gain * fit.loo_rmse ** 2 < CERTAIN_LINE ** 2
                                   and (rival_rmse is None or fit.loo_rmse <= RIVAL_FACTOR * rival_rmse[i]))

        return np.array([sure(i) for i in range(d)])

    def predict(self, z: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """f(z) for ``nodes`` (standardised units): (rows, len(nodes)); roots get their context mean, 0."""
        z = np.asarray(z, dtype=np.float64)
        out = np.zeros((len(z), len(nodes)), dtype=np.float64)
        for col, i in enumerate(nodes):
            fit = self.fits.get(int(i))
            if fit is not None:
                out[:, col] = fit.predict(z[:, fit.parents])
        return out
