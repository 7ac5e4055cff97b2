"""The paper's error metric and its node selection."""

from __future__ import annotations

import numpy as np


def rmse_per_sample(truth: np.ndarray, estimate: np.ndarray, nodes: np.ndarray | None = None) -> float:
    """Mean over rows of the RMSE over the selected nodes: ``mean_s sqrt(mean_i (y[s,i] - yhat[s,i])^2)``.

    truth, estimate: (rows, d); nodes: boolean (d,) selecting the scored nodes (default: all).
    Returns NaN when no node is selected."""
    truth, estimate = np.asarray(truth, dtype=np.float64), np.asarray(estimate, dtype=np.float64)
    if truth.shape != estimate.shape:
        raise ValueError(f"shapes differ: {truth.shape} vs {estimate.shape}")
    if nodes is not None:
        if not np.any(nodes):
            return float("nan")
        truth, estimate = truth[:, nodes], estimate[:, nodes]
    return float(np.mean(np.sqrt(np.mean((truth - estimate) ** 2, axis=1))))


def nodes_with_parents(adj: np.ndarray, exclude: list[int] | None = None) -> np.ndarray:
    """Boolean (d,) mask of nodes with at least one parent (adj[j, i]: j -> i), minus ``exclude``."""
    mask = np.asarray(adj, dtype=bool).any(axis=0)
    for k in exclude or []:
        mask[k] = False
    return mask


def parent_group(parents: int) -> str:
    """The group a node with this many parents is reported in: "1", "2-3" or "4+"."""
    return "1" if parents == 1 else "2-3" if parents <= 3 else "4+"
