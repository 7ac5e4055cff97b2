"""An edge's confidence: its subsample stability mapped to how often edges that stable were right.

``discover`` measures each edge's *stability*: the share of random halves of the rows whose DAG holds the edge
in that direction. Stability is not correctness: where a method's assumptions fail (BIC with linear-Gaussian
regressions on nonlinear mechanisms) a wrong edge can be stable. So the ``confidence`` it reports is the
stability passed through a monotone map, one per method, fitted on the simulator's prior: the share of edges of
about that stability that were right (present and oriented as in the truth). The map is an isotonic
(pool-adjacent-violators) regression of right / wrong on stability over the calibration SCMs' edges, each pooled
block's share shrunk towards one half by one right and one wrong pseudo-edge (so no block says 0 or 1 from a
handful of edges; blocks that shrinking puts out of order are pooled again); between the measured stabilities it
is linear, beyond them flat.

The maps live in ``condfip/data/edge-confidence.json``, written by ``python tools/discovery_comparison.py
fit-confidence`` from calibration rows of the design seed (docs/discovery.md has the command and the check on a
second seed). They were measured with the default 20 subsamples, n = 400 and d in {10, 20}: on other settings
the confidence is that prior's estimate, not a guarantee.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

MAP_FILE = Path(__file__).parent / "data" / "edge-confidence.json"


def _pool(sums: np.ndarray, counts: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Pool adjacent violators over ordered groups (``sums`` right of ``counts`` each): merge neighbours while a
    group's share is below its predecessor's. Returns the blocks as (first group, last group, right, size)."""
    blocks: list[tuple[int, int, float, float]] = []
    for i, (s, c) in enumerate(zip(sums, counts, strict=True)):
        block = (i, i, float(s), float(c))
        while blocks and blocks[-1][2] / blocks[-1][3] > block[2] / block[3]:
            first, _, s2, c2 = blocks.pop()
            block = (first, block[1], s2 + block[2], c2 + block[3])
        blocks.append(block)
    return blocks


def _spread(blocks: list[tuple[int, int, float, float]], column: int) -> np.ndarray:
    """Each group's value of its block (``column`` 2: right, 3: size)."""
    return np.repeat([b[column] for b in blocks], [b[1] - b[0] + 1 for b in blocks])


def _by_value(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct x, and the right count and size of the group of edges at each."""
    order = np.argsort(x, kind="stable")
    xs, start = np.unique(x[order], return_index=True)
    return xs, np.add.reduceat(y[order].astype(float), start), np.diff(np.append(start, len(x))).astype(float)


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-decreasing least-squares fit of ``y`` (right / wrong) on ``x`` (pool adjacent violators, ties in
    x pooled first). Returns (the distinct x, and for each the right count and size of the block it fell in):
    the fitted share at each distinct x is right / size."""
    xs, sums, counts = _by_value(x, y)
    blocks = _pool(sums, counts)
    return xs, _spread(blocks, 2), _spread(blocks, 3)


def fit_map(stability: np.ndarray, right: np.ndarray) -> dict:
    """The map of one method from its calibration edges: {"stability": [...], "confidence": [...], "edges": n}.

    Each block of the isotonic fit gets one right and one wrong pseudo-edge; where that shrinking puts a small
    block out of order, the shrunk blocks are pooled again, so the map stays non-decreasing."""
    xs, sums, counts = _by_value(np.asarray(stability, dtype=float), np.asarray(right, dtype=bool))
    blocks = _pool(sums, counts)
    shrunk = _pool(np.array([b[2] + 1.0 for b in blocks]), np.array([b[3] + 2.0 for b in blocks]))
    widths = np.array([b[1] - b[0] + 1 for b in blocks])  # distinct stabilities per first-pass block
    share = np.repeat([b[2] / b[3] for b in shrunk], [widths[b[0]:b[1] + 1].sum() for b in shrunk])
    return {"stability": [round(float(v), 6) for v in xs], "confidence": [round(float(v), 4) for v in share],
            "edges": len(stability)}


@cache
def maps() -> dict:
    """The shipped maps, keyed by method (read once; the file is package data)."""
    return json.loads(MAP_FILE.read_text())["methods"]


def confidence(method: str, stability: float) -> float | None:
    """The confidence of an edge with this subsample ``stability`` found by ``method`` (None for a method the
    file has no map for: only while a new method's calibration is being measured; every shipped method has one,
    tests/test_discover.py checks it)."""
    table = maps().get(method)
    if table is None:
        return None
    return float(np.interp(stability, table["stability"], table["confidence"]))
