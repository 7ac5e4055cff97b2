"""Kernel mechanisms: each node's f_i(x_parents) as kernel ridge regression on the context rows, in closed form.

Generation (samples, interventions, counterfactuals) needs f_i at rows the context never held: parent values
beyond the context's range, combinations it never saw. The network's decoder T sees the context only through a
pooled code and was measured 2.5x worse than the encoder head (docs/training-log.md, "kernel mechanisms"); this
module answers the same question by regression on the context rows themselves. For node i with parents P
(standardised units), on the n context rows ``A = x[:, P]``:

    f_i(z) = k(z_P, A) @ alpha,   alpha = (K + ridge I)^-1 x_i,   K = k(A, A)
    k(a, b) = 1 + a.b                                  (linear: a straight line, which continues its trend)
            | 1 + a.b + exp(-|a - b|^2 / (2 ell^2))    (linear + RBF, ell = r sqrt(|P|), r in RADII)

The kernel, its length-scale and the ridge are chosen per node by exact leave-one-out error on the context (one
eigendecomposition of K per kernel gives the LOO error of every ridge in closed form), so nothing is tuned to a
benchmark and a linear mechanism gets a line. The choice reads at most ``SELECTION_ROWS`` context rows (evenly
spaced; the eigendecompositions grow with n^3); the chosen regression is then solved on all of them. This is a
classical, closed-form per-dataset fit (no gradient step, no network), not the paper's regression-free decoder;
``InferredSCM(mechanisms="kernel")`` uses it. Roots have no mechanism (f_i = the context mean, 0 here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RADII = (0.5, 1.0, 2.0)  # RBF length-scales in units of sqrt(number of parents) (standardised data)
RIDGES = tuple(10.0 ** np.arange(-5.0, 1.01, 0.5))
SELECTION_ROWS = 400


def kernel(a: np.ndarray, b: np.ndarray, lengthscale: float | None) -> np.ndarray:
    """``1 + a.b`` plus, when ``lengthscale`` is set, an RBF term of that length-scale. a: (n, p), b: (m, p)."""
    k = 1.0 + a @ b.T
    if lengthscale is not None:
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        k += np.exp(-np.maximum(sq, 0.0) / (2.0 * lengthscale * lengthscale))
    return k


@dataclass(frozen=True)
class NodeFit:
    """One node's chosen regression: its parents, kernel length-scale (None: linear), ridge, the dual weights
    over the context rows and its leave-one-out RMSE (standardised units)."""

    parents: np.ndarray
    lengthscale: float | None
    ridge: float
    alpha: np.ndarray
    loo_rmse: float


def select(a: np.ndarray, y: np.ndarray) -> tuple[float | None, float, np.ndarray, float]:
    """(length-scale, ridge, alpha, LOO RMSE) with the lowest exact leave-one-out error on rows ``a`` -> ``y``."""
    best = None
    for lengthscale in (None, *(r * np.sqrt(a.shape[1]) for r in RADII)):
        eigval, eigvec = np.linalg.eigh(kernel(a, a, lengthscale))
        eigval, projected, squared = np.maximum(eigval, 0.0), eigvec.T @ y, eigvec * eigvec
        for ridge in RIDGES:
            w = 1.0 / (eigval + ridge)
            alpha = eigvec @ (w * projected)
            loo = float(np.mean((alpha / (squared @ w)) ** 2))  # LOO residual = alpha_j / ((K + ridge I)^-1)_jj
            if best is None or loo < best[0]:
                best = (loo, lengthscale, float(ridge), alpha)
    return best[1], best[2], best[3], float(np.sqrt(best[0]))


def solve(a: np.ndarray, y: np.ndarray, lengthscale: float | None, ridge, weights=None) -> np.ndarray:
    """Dual weights of the ridge regression a -> y; ``weights`` (row multiplicities) make a row count that many
    times: ``(K + ridge / weights) alpha = y``."""
    gram = kernel(a, a, lengthscale)
    gram[np.diag_indices_from(gram)] += ridge if weights is None else ridge / weights
    return np.linalg.solve(gram, y)


class KernelMechanisms:
    """The per-node kernel regressions of one context: ``x`` (n, d) standardised rows, ``adj[j, i]``: j -> i."""

    def __init__(self, x: np.ndarray, adj: np.ndarray):
        x = np.asarray(x, dtype=np.float64)
        self.context = x
        self.fits: dict[int, NodeFit] = {}
        rows = np.unique(np.linspace(0, len(x) - 1, min(len(x), SELECTION_ROWS)).round().astype(int))
        for i in range(x.shape[1]):
            parents = np.flatnonzero(adj[:, i])
            if len(parents) == 0:
                continue
            lengthscale, ridge, alpha, loo = select(x[rows][:, parents], x[rows, i])
            if len(rows) < len(x):
                alpha = solve(x[:, parents], x[:, i], lengthscale, ridge)
            self.fits[i] = NodeFit(parents, lengthscale, ridge, alpha, loo)

    def predict(self, z: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """f(z) for ``nodes`` (standardised units): (rows, len(nodes)); roots get their context mean, 0."""
        z = np.asarray(z, dtype=np.float64)
        out = np.zeros((len(z), len(nodes)), dtype=np.float64)
        for col, i in enumerate(nodes):
            fit = self.fits.get(int(i))
            if fit is not None:
                out[:, col] = kernel(z[:, fit.parents], self.context[:, fit.parents], fit.lengthscale) @ fit.alpha
        return out
