"""Real data: the Sachs et al. (2005) flow-cytometry table, and the squared MMD of generated vs held-out rows.

Data: the 853 observational rows (cd3/cd28 condition) of the 11 proteins, raw positive values; we take logs,
then standardise each column over the 853 rows. Graph: the 17-edge consensus DAG. The loader reads the package
data ``condfip/data/sachs.csv`` (+ ``condfip/data/sachs-graph.csv``, an edge list ``cause,effect``), or the
same two files from a folder the caller names.

Protocol: per split, a random permutation puts 400 rows in the context (every method is fitted on them, with
the consensus graph) and 400 others in the held-out half. Each method generates 400 rows with fresh noise;
the score is the unbiased squared MMD between the generated and the held-out rows, Gaussian kernel
``exp(-|x - y|^2 / (2 s^2))`` with ``s`` the median pairwise distance of the pooled rows (median heuristic).
The ``real`` row scores the context half itself against the held-out half: what two real samples differ by.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

SACHS_COLUMNS = ("praf", "pmek", "plcg", "PIP2", "PIP3", "p44/42", "pakts473", "PKA", "PKC", "P38", "pjnk")
SACHS_EDGES = (
    ("praf", "pmek"), ("pmek", "p44/42"), ("plcg", "PIP2"), ("plcg", "PIP3"), ("PIP3", "PIP2"),
    ("p44/42", "pakts473"), ("PKA", "praf"), ("PKA", "pmek"), ("PKA", "p44/42"), ("PKA", "pakts473"),
    ("PKA", "pjnk"), ("PKA", "P38"), ("PKC", "praf"), ("PKC", "pmek"), ("PKC", "PKA"), ("PKC", "pjnk"),
    ("PKC", "P38"),
)
SACHS_ROWS = 853
SPLIT_ROWS = 400
SACHS_SEED = 20_250_918


class SachsDataMissing(FileNotFoundError):
    """The Sachs table is not installed (package data) and no folder holding it was given."""


def _read_pair(data_text: str, graph_text: str, where: str) -> tuple[pd.DataFrame, nx.DiGraph]:
    raw = pd.read_csv(io.StringIO(data_text))
    missing = [c for c in SACHS_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{where}: sachs.csv lacks columns {missing}")
    raw = raw[list(SACHS_COLUMNS)].astype(np.float64)
    if len(raw) != SACHS_ROWS:
        raise ValueError(f"{where}: sachs.csv has {len(raw)} rows, expected the {SACHS_ROWS} observational "
                         "rows")
    if not (raw.to_numpy() > 0).all():
        raise ValueError(f"{where}: sachs.csv must hold the raw (positive) values; found values <= 0")
    edges = pd.read_csv(io.StringIO(graph_text))
    graph = nx.DiGraph()
    graph.add_nodes_from(SACHS_COLUMNS)
    graph.add_edges_from(zip(edges.iloc[:, 0].astype(str), edges.iloc[:, 1].astype(str)))
    if sorted(graph.nodes) != sorted(SACHS_COLUMNS) or not nx.is_directed_acyclic_graph(graph):
        raise ValueError(f"{where}: sachs-graph.csv must be a DAG over the 11 proteins")
    logs = np.log(raw)
    data = (logs - logs.mean()) / logs.std(ddof=0)
    return data, graph


def load_sachs(folder: str | Path | None = None) -> tuple[pd.DataFrame, nx.DiGraph]:
    """(log-transformed, standardised 853 x 11 table, consensus DAG). From ``folder`` (holding ``sachs.csv``
    and ``sachs-graph.csv``) if given, else from the package data ``condfip/data``."""
    if folder is not None:
        folder = Path(folder)
        data_path, graph_path = folder / "sachs.csv", folder / "sachs-graph.csv"
        if not data_path.exists() or not graph_path.exists():
            raise SachsDataMissing(f"{folder} must hold sachs.csv (853 x 11 raw values) and sachs-graph.csv "
                                   "(edge list cause,effect)")
        return _read_pair(data_path.read_text(), graph_path.read_text(), str(folder))
    try:
        base = resources.files("condfip") / "data"
        data_text = (base / "sachs.csv").read_text()
        graph_text = (base / "sachs-graph.csv").read_text()
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError, OSError):
        raise SachsDataMissing(
            "the Sachs data are not installed: condfip/data/sachs.csv and condfip/data/sachs-graph.csv are "
            "missing from the package; reinstall condfip, or pass a folder holding both files "
            "(condfip bench --sachs-dir DIR)") from None
    return _read_pair(data_text, graph_text, "condfip/data")


# ---- the MMD ----------------------------------------------------------------------------------------
def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """Median heuristic: the median Euclidean distance over the distinct pairs of the pooled rows."""
    pooled = np.concatenate([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    d2 = _sq_dists(pooled, pooled)
    return float(np.sqrt(np.median(d2[np.triu_indices(len(pooled), k=1)])))


def mmd2_unbiased(x, y, bandwidth: float | None = None) -> float:
    """Unbiased estimate of the squared MMD between the rows of x (m x d) and y (n x d) with the Gaussian
    kernel ``exp(-|a - b|^2 / (2 bandwidth^2))`` (median heuristic when ``bandwidth`` is None). It can be
    negative."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"need two (rows >= 2, d) arrays with the same d, got {x.shape} and {y.shape}")
    s = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    if s <= 0:
        raise ValueError("the kernel bandwidth must be positive (all rows identical?)")
    kxx, kyy, kxy = (np.exp(-_sq_dists(a, b) / (2.0 * s * s)) for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def split(data: pd.DataFrame, k: int, seed: int = SACHS_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``k``: (context rows, held-out rows), 400 each, disjoint."""
    perm = np.random.default_rng([seed, k]).permutation(len(data))
    return data.iloc[np.sort(perm[:SPLIT_ROWS])], data.iloc[np.sort(perm[SPLIT_ROWS:2 * SPLIT_ROWS])]
