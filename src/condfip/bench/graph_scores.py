"""How close a discovered DAG is to the true one: SHD, edge precision and recall, orientation accuracy.

- ``shd``: structural Hamming distance, the edge additions, deletions and reversals that turn the estimate
  into the truth (a reversed edge counts once).
- ``precision`` / ``recall``: over the skeleton (an edge counts as found whatever its direction).
- ``orientation``: among the true edges found, the share pointing the right way (None when none is found).
"""

from __future__ import annotations

import networkx as nx


def graph_scores(truth: nx.DiGraph, estimate: nx.DiGraph) -> dict:
    true_edges = {(str(u), str(v)) for u, v in truth.edges()}
    found = {(str(u), str(v)) for u, v in estimate.edges()}
    true_skeleton = {frozenset(e) for e in true_edges}
    found_skeleton = {frozenset(e) for e in found}
    common = true_skeleton & found_skeleton
    right_way = len(true_edges & found)
    reversed_ = len(common) - right_way
    return {
        "shd": len(true_skeleton - found_skeleton) + len(found_skeleton - true_skeleton) + reversed_,
        "precision": len(common) / len(found_skeleton) if found_skeleton else None,
        "recall": len(common) / len(true_skeleton) if true_skeleton else None,
        "orientation": right_way / len(common) if common else None,
        "true_edges": len(true_edges),
        "found_edges": len(found),
    }
