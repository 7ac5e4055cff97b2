"""Writing a simulated dataset to a folder: data, noise, graph and the metadata that regenerates it.

``DIR/data.csv`` and ``DIR/noise.csv`` hold one column per node (no index column; data = f(data) + noise),
``DIR/graph.csv`` the edge list (header ``cause,effect``) and ``DIR/meta.json`` everything needed to
regenerate the dataset bit for bit. Floats are written with 17 significant digits (they round-trip) and
every file is replaced atomically, so a reader never sees a half-written file. No timestamps and no machine
paths are written: the same dataset always gives byte-identical files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from condfip.atomic import atomic_write_text
from condfip.simulate.synthetic import SimulatedDataset
from condfip.version import __version__

FLOAT_FORMAT = "%.17g"
FILES = ("data.csv", "noise.csv", "graph.csv", "meta.json")


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def _check_no_paths(value, where: str = "meta") -> None:
    """Refuse absolute paths in the metadata: the files must not depend on the machine that wrote them."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_no_paths(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for k, item in enumerate(value):
            _check_no_paths(item, f"{where}[{k}]")
    elif isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isabs(value)):
        raise ValueError(f"{where} holds a machine path ({value!r}); meta.json must not name paths")


def dataset_meta(dataset: SimulatedDataset) -> dict:
    """What the dataset itself knows about how it was drawn."""
    scms = dataset.scm.batch.scms
    return {
        "condfip_version": __version__,
        "mechanism": dataset.mechanism,
        "nodes": int(dataset.data.shape[1]),
        "samples": int(dataset.data.shape[0]),
        "columns": [str(c) for c in dataset.data.columns],
        "noise_families": list(scms.noise_families),
        "heteroscedastic": scms.heteroscedastic is not None,
        "rescaled_fraction": float(dataset.rescaled_fraction),
        "edges": int(dataset.scm.graph.number_of_edges()),
    }


def write_dataset(dataset: SimulatedDataset, out_dir: str | os.PathLike, meta: dict) -> None:
    """Write ``data.csv``, ``noise.csv``, ``graph.csv`` and ``meta.json`` into ``out_dir`` (created if needed).

    ``meta`` is the caller's record of how the dataset was drawn (preset, prior dict, overrides, seed, the
    graph models and noise families it was drawn from...); the dataset's own facts (mechanism, shape, noise
    families, rescaled fraction, condfip version) are added and take precedence. It must be JSON-serialisable
    and hold no absolute paths.
    """
    record = {**meta, **dataset_meta(dataset)}
    _check_no_paths(record)
    meta_text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"
    graph = dataset.scm.graph
    order = {c: k for k, c in enumerate(dataset.scm.columns)}
    edges = sorted(graph.edges, key=lambda e: (order[e[0]], order[e[1]]))
    edge_frame = pd.DataFrame(edges, columns=["cause", "effect"], dtype=object)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "data.csv", _csv(dataset.data))
    atomic_write_text(out / "noise.csv", _csv(dataset.noise))
    atomic_write_text(out / "graph.csv", _csv(edge_frame))
    atomic_write_text(out / "meta.json", meta_text)  # last: its presence marks a complete folder
