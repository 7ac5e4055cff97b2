"""Random DAG models. Each returns a boolean adjacency ``A[i, j] = True`` meaning i -> j that is strictly
upper triangular: node order 0..d-1 is a topological order. The caller applies a random permutation
afterwards, so the topological order users see is random."""

from __future__ import annotations

import networkx as nx
import numpy as np


def _stochastic_round(value: float, rng: np.random.Generator) -> int:
    low = int(np.floor(value))
    return low + int(rng.random() < value - low)


def _orient(undirected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Orient an undirected graph along a random order, relabelled so that the order is 0..d-1."""
    symmetric = undirected | undirected.T
    perm = rng.permutation(undirected.shape[0])
    return np.triu(symmetric[np.ix_(perm, perm)], k=1)


def erdos_renyi(d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    p = min(1.0, 2.0 * edges_per_node / max(d - 1, 1))
    return np.triu(rng.random((d, d)) < p, k=1)


def scale_free_out(d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    """Preferential attachment: each new node picks parents among earlier ones with probability growing
    with their number of children, so early nodes become hubs with many children (out-degree hubs)."""
    adj = np.zeros((d, d), dtype=bool)
    for j in range(1, d):
        m = min(j, _stochastic_round(edges_per_node, rng))
        if m == 0:
            continue
        weight = adj[:j].sum(axis=1) + 1.0
        parents = rng.choice(j, size=m, replace=False, p=weight / weight.sum())
        adj[parents, j] = True
    return adj


def scale_free_in(d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    """Out-degree hubs reversed: hubs with many parents (in-degree hubs)."""
    return scale_free_out(d, edges_per_node, rng)[::-1, ::-1].T.copy()


def watts_strogatz(d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    k = max(2, min(d - 1, 2 * round(edges_per_node)))
    g = nx.watts_strogatz_graph(d, k, 0.3, seed=int(rng.integers(2**31)))
    return _orient(nx.to_numpy_array(g, nodelist=range(d)).astype(bool), rng)


def stochastic_block(d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    """Blocks of about 5-10 nodes; edges 10x likelier inside a block; edges_per_node on average."""
    blocks = max(2, d // 8)
    label = rng.integers(blocks, size=d)
    same = label[:, None] == label[None, :]
    pairs_in, pairs_out = (same.sum() - d) / 2, (~same).sum() / 2
    # solve p_in * pairs_in + p_out * pairs_out = edges_per_node * d with p_in = 10 p_out
    p_out = edges_per_node * d / max(10 * pairs_in + pairs_out, 1.0)
    prob = np.where(same, min(1.0, 10 * p_out), min(1.0, p_out))
    upper = np.triu(rng.random((d, d)) < prob, k=1)
    return _orient(upper, rng)


def random_geometric(d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    points = rng.random((d, 2))
    radius = np.sqrt(2.0 * edges_per_node / (max(d - 1, 1) * np.pi))
    dist = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    close = (dist < radius) & ~np.eye(d, dtype=bool)
    return _orient(close, rng)


GRAPH_MODELS = {
    "er": erdos_renyi,
    "sf-in": scale_free_in,
    "sf-out": scale_free_out,
    "ws": watts_strogatz,
    "sbm": stochastic_block,
    "grg": random_geometric,
}


def sample_dag(kind: str, d: int, edges_per_node: float, rng: np.random.Generator) -> np.ndarray:
    """A random DAG of the named model over d nodes in topological order 0..d-1."""
    if kind not in GRAPH_MODELS:
        raise ValueError(f"unknown graph model {kind!r}; choose one of {sorted(GRAPH_MODELS)}")
    adj = GRAPH_MODELS[kind](d, edges_per_node, rng)
    return np.triu(adj.astype(bool), k=1)
