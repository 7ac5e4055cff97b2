"""Saved SCMs: ``save_scm(scm, path)`` writes one safetensors file, ``read_scm`` reads and checks it, and
``condfip.load_scm(path)`` (in ``condfip.inference``, which this module never imports) rebuilds the SCM from it.

The file holds the tensors ``context`` (float64 rows x nodes), ``mean`` and ``std`` (the standardisation,
float64) and ``code`` (the dataset code the network computed, float32) and, in the safetensors header's
metadata under ``condfip_scm``, a JSON document: the format version, the sha256 and model config of the
weights it was inferred with, the column names, the graph's edges, the context rows' index, the abduction,
the noise model, the default sample size and hard interventions; since version 3 also what a discovered graph
carries (``condfip.discover``): each edge's bootstrap ``confidence`` (``edge_confidence``: [cause, effect,
confidence] for the edges that have one), the required edges (``given_edges``) and ``graph_source``, so that
the trust report of a loaded SCM still lists the low-confidence edges. Version 2 files (without them) load,
with no confidences and ``graph_source`` "given". Since version 4 the document names the SCM's ``mechanisms``
("kernel" or "network"; the kernel regressions are refitted from the stored context on load, deterministically);
files of versions 2 and 3 were all "network" SCMs and load as such.

A loaded SCM answers exactly as the original (bitwise, for the same weights and seed): it uses the stored
code and standardisation rather than recomputing them. Weights whose sha256 differs from the recorded one
are refused. Writes are atomic (a temporary file in the same folder, then a rename).

Integrity: the document also holds ``checksum``, a sha256 over every tensor (name, dtype, shape, bytes) and the
rest of the document; ``read_scm`` recomputes it, so an edited edge, confidence, column or tensor is refused, and
then checks what a checksum cannot vouch for in a file written by hand: the keys are present, the graph is a DAG
over the columns, the tensors are finite and their shapes fit the columns.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import networkx as nx
import numpy as np
import pandas as pd
import torch

from condfip.atomic import atomic_write
from condfip.errors import InputError
from condfip.kernel_mechanisms import MECHANISMS
from condfip.model import DatasetCode
from condfip.pretrained import sha256
from condfip.version import __version__

FORMAT_VERSION = 4  # 2: with the content checksum; 3: with the discovered graph's edge confidences; 4: mechanisms
READABLE_VERSIONS = (2, 3, 4)
MECHANISMS_BEFORE_V4 = "network"  # what every SCM saved by versions 2 and 3 generated through
METADATA_KEY = "condfip_scm"
REQUIRED_KEYS = ("checksum", "columns", "edges", "index", "abduction", "noise_model", "default_n", "interventions",
                 "weights_sha256", "model")
EDGE_ATTRIBUTE_KEYS = ("edge_confidence", "given_edges", "graph_source")  # required from version 3 on


def content_checksum(meta: dict, tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors (sorted by name: name, dtype, shape, bytes) and the document without its
    ``checksum`` (canonical JSON)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    document = {key: value for key, value in meta.items() if key != "checksum"}
    digest.update(json.dumps(document, sort_keys=True).encode())
    return digest.hexdigest()


def _index_to_json(index: pd.Index) -> list | None:
    """The context index as a JSON list when it holds only ints or strings, else None (a RangeIndex)."""
    values = index.tolist()
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return [int(v) for v in values]
    if all(isinstance(v, str) for v in values):
        return values
    return None


def save_scm(scm, path: str | os.PathLike) -> Path:
    """Write ``scm`` (an InferredSCM, with at most hard interventions) to ``path``, atomically."""
    if not hasattr(scm, "network") or not hasattr(scm, "code"):
        raise InputError(f"save() needs an inferred SCM, got {type(scm).__name__}")
    shifts = [node for node, value in scm.interventions.items() if callable(value)]
    if shifts:
        raise InputError(f"shift interventions on {shifts} are functions and cannot be saved; "
                         f"fix: save the SCM before .do() and apply the shift after load_scm()")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"save path {str(path)!r} is a directory; fix: pass a file name, e.g. model.safetensors")
    meta = {
        "format_version": FORMAT_VERSION,
        "condfip_version": __version__,
        "weights_sha256": scm.card.get("sha256", ""),
        "model": scm.card.get("model", {}),
        "columns": list(scm.columns),
        "edges": [[str(a), str(b)] for a, b in scm._graph.edges()],
        "edge_confidence": [[str(a), str(b), float(c)] for a, b, c in scm._graph.edges(data="confidence")
                            if c is not None],
        "given_edges": [[str(a), str(b)] for a, b, given in scm._graph.edges(data="given") if given],
        "graph_source": str(scm.graph_source),
        "index": _index_to_json(scm.context.index),
        "abduction": scm.abduction,
        "noise_model": scm.noise_model,
        "mechanisms": scm.mechanisms,
        "default_n": int(scm.default_n),
        "interventions": {node: float(value) for node, value in scm.interventions.items()},
    }
    tensors = {
        "context": torch.as_tensor(np.ascontiguousarray(scm.context.to_numpy(dtype=np.float64))),
        "mean": torch.as_tensor(np.asarray(scm.mean, dtype=np.float64)),
        "std": torch.as_tensor(np.asarray(scm.std, dtype=np.float64)),
        "code": scm.code.mu.detach().contiguous().clone(),
    }
    for name in DatasetCode._fields[1:]:  # the decoder options' parts of the code, when present
        if getattr(scm.code, name) is not None:
            tensors[name] = getattr(scm.code, name).contiguous().clone()
    meta["checksum"] = content_checksum(meta, tensors)
    from safetensors.torch import save_file

    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(meta)}))
    return path


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import safe_open

    where = f"saved SCM {str(path)!r}"
    if not path.exists():
        raise InputError(f"{where} does not exist; fix: check the path")
    if path.is_dir():
        raise InputError(f"{where} is a directory; fix: pass the file written by scm.save()")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 - safe_open is no dict
    except Exception as err:  # noqa: BLE001 - safetensors raises several unrelated types on bad files
        raise InputError(f"{where} is truncated, corrupt or not a safetensors file ({type(err).__name__}); "
                         f"fix: save the SCM again") from None
    if METADATA_KEY not in metadata:
        raise InputError(f"{where} is a safetensors file but not a saved condfip SCM; fix: pass a file "
                         f"written by scm.save()")
    try:
        meta = json.loads(metadata[METADATA_KEY])
    except ValueError:
        raise InputError(f"{where} has a corrupt header; fix: save the SCM again") from None
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise InputError(f"{where} has format version {meta.get('format_version')!r}, this condfip reads "
                         f"versions {', '.join(map(str, READABLE_VERSIONS))}; fix: save it again with this version")
    missing = [k for k in ("context", "mean", "std", "code") if k not in tensors]
    if missing:
        raise InputError(f"{where} lacks the tensors {missing}; fix: save the SCM again")
    _check_integrity(meta, tensors, where)
    return meta, tensors


def _check_integrity(meta: dict, tensors: dict[str, torch.Tensor], where: str) -> None:
    """The checksum, the keys, the graph (a DAG over the columns) and the tensors (finite, shapes that fit)."""
    if not isinstance(meta, dict):
        raise InputError(f"{where} has a corrupt header (not a JSON object); fix: save the SCM again")
    required = REQUIRED_KEYS + (EDGE_ATTRIBUTE_KEYS if meta.get("format_version", 0) >= 3 else ()) + (
        ("mechanisms",) if meta.get("format_version", 0) >= 4 else ())
    absent = [key for key in required if key not in meta]
    if absent:
        raise InputError(f"{where} lacks the key(s) {absent} in its header; fix: save the SCM again")
    if meta["checksum"] != content_checksum(meta, tensors):
        raise InputError(f"{where} fails its checksum: its edges, edge confidences, columns or tensors were edited or corrupted "
                         f"after it was saved; fix: save the SCM again from its data")
    columns = meta["columns"]
    if not isinstance(columns, list) or len(set(map(str, columns))) != len(columns) or not columns:
        raise InputError(f"{where} has invalid columns {columns!r}; fix: save the SCM again")
    graph = nx.DiGraph()
    graph.add_nodes_from(map(str, columns))
    try:
        graph.add_edges_from((str(a), str(b)) for a, b in meta["edges"])
    except (TypeError, ValueError):
        raise InputError(f"{where} has malformed edges; fix: save the SCM again") from None
    if set(graph.nodes) != set(map(str, columns)):
        unknown = sorted(set(graph.nodes) - set(map(str, columns)))
        raise InputError(f"{where} has edges on node(s) {unknown} that are not among its columns; fix: save the "
                         f"SCM again")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(edge[0] for edge in nx.find_cycle(graph))
        raise InputError(f"{where} has a cyclic graph ({cycle} -> ...); fix: save the SCM again from a DAG")
    _edge_attributes(meta, graph, where)
    d = len(columns)
    shapes = {"context": (None, d), "mean": (d,), "std": (d,)}
    for name, shape in shapes.items():
        actual = tuple(tensors[name].shape)
        if len(actual) != len(shape) or any(want is not None and got != want for got, want in zip(actual, shape)):
            raise InputError(f"{where} is inconsistent ({name} has shape {actual} for {d} columns); fix: save "
                             f"the SCM again")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{where} holds NaN or inf in its {name!r} tensor; fix: save the SCM again from "
                             f"finite data")
    if meta.get("mechanisms", MECHANISMS_BEFORE_V4) not in MECHANISMS:
        raise InputError(f"{where} has mechanisms {meta.get('mechanisms')!r}, not one of {MECHANISMS}; fix: "
                         f"save the SCM again")
    if not (tensors["std"] > 0).all():
        raise InputError(f"{where} has a zero or negative standard deviation; fix: save the SCM again")


def _edge_attributes(meta: dict, graph: nx.DiGraph, where: str) -> dict[tuple[str, str], dict]:
    """{(cause, effect): {"confidence": c, "given": True}} from the document (empty for version 2), after
    checking that every entry names an edge of ``graph`` and every confidence is a number in [0, 1]."""
    out: dict[tuple[str, str], dict] = {}
    for key in ("edge_confidence", "given_edges"):
        if not isinstance(meta.get(key, []), list):
            raise InputError(f"{where} has a malformed {key!r} (not a list); fix: save the SCM again")
    entries = [("confidence", entry) for entry in meta.get("edge_confidence", [])] + [
        ("given", entry) for entry in meta.get("given_edges", [])]
    for kind, entry in entries:
        size = 3 if kind == "confidence" else 2
        if not isinstance(entry, list) or len(entry) != size:
            raise InputError(f"{where} has a malformed {kind} entry {entry!r}; fix: save the SCM again")
        edge = (str(entry[0]), str(entry[1]))
        if not graph.has_edge(*edge):
            raise InputError(f"{where} has a {kind} for {edge[0]} -> {edge[1]}, which is not an edge of its graph; "
                             f"fix: save the SCM again")
        if kind == "given":
            out.setdefault(edge, {})["given"] = True
            continue
        value = entry[2]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise InputError(f"{where} has confidence {value!r} for {edge[0]} -> {edge[1]}, not a number in [0, 1]; "
                             f"fix: save the SCM again")
        out.setdefault(edge, {})["confidence"] = float(value)
    if not isinstance(meta.get("graph_source", ""), str):
        raise InputError(f"{where} has a graph_source that is not text; fix: save the SCM again")
    return out


class SavedSCM(NamedTuple):
    """What a saved SCM's file holds, checked against the weights it is loaded on (``read_scm``)."""

    context: pd.DataFrame
    graph: nx.DiGraph
    mean: np.ndarray
    std: np.ndarray
    code: DatasetCode
    abduction: str
    noise_model: str
    default_n: int
    graph_source: str
    interventions: dict[str, float]
    mechanisms: str = MECHANISMS_BEFORE_V4


def read_scm(path: str | os.PathLike, card: dict, weights_file: str | os.PathLike) -> SavedSCM:
    """The SCM saved at ``path`` by ``save_scm``, checked (see the module docstring) and against the weights it is
    to be loaded on (their model ``card`` and file): they must be the ones it was inferred with (same sha256, same
    model config, the code parts their decoder needs). ``condfip.load_scm`` rebuilds the SCM from it."""
    path = Path(path)
    meta, tensors = _read(path)
    actual = card.get("sha256") or sha256(weights_file)  # build_network checked the card's sha256 on the file
    recorded = meta.get("weights_sha256", "")
    if actual != recorded:
        raise InputError(f"saved SCM {str(path)!r} was inferred with weights sha256 {recorded[:12]}... but "
                         f"{str(weights_file)!r} has sha256 {actual[:12]}...; fix: pass weights= the folder of "
                         f"the weights it was saved with, or infer the SCM again")
    if meta.get("model") != card.get("model"):
        raise InputError(f"saved SCM {str(path)!r} was inferred with model config {meta.get('model')}, the "
                         f"weights have {card.get('model')}; fix: pass the matching weights")
    columns = [str(c) for c in meta["columns"]]
    context = tensors["context"].numpy()  # shape and finiteness checked by _read
    index = meta.get("index")
    frame = pd.DataFrame(context, columns=columns, index=None if index is None else pd.Index(index))
    graph = nx.DiGraph()
    graph.add_nodes_from(columns)
    graph.add_edges_from(tuple(edge) for edge in meta["edges"])
    for edge, attributes in _edge_attributes(meta, graph, f"saved SCM {str(path)!r}").items():
        graph.edges[edge].update(attributes)
    saved = {name for name in DatasetCode._fields[1:] if name in tensors}
    expected = ({"pair_coef"} if card["model"].get("decoder_pair_weights") else set()) | (
        {"context_tokens", "context_rows"} if card["model"].get("decoder_context") else set())
    if saved != expected:
        raise InputError(f"saved SCM {str(path)!r} does not match its weights' decoder (code parts saved: "
                         f"{sorted(saved)}, the weights need: {sorted(expected)}); fix: infer the SCM again")
    code = DatasetCode(tensors["code"].clone(), **{name: tensors[name].clone() for name in saved})
    return SavedSCM(context=frame, graph=graph, mean=tensors["mean"].numpy().copy(),
                    std=tensors["std"].numpy().copy(), code=code, abduction=meta["abduction"],
                    noise_model=meta["noise_model"], default_n=int(meta["default_n"]),
                    graph_source=meta.get("graph_source", "given"),
                    interventions={node: float(value) for node, value in (meta.get("interventions") or {}).items()},
                    mechanisms=meta.get("mechanisms", MECHANISMS_BEFORE_V4))
