"""The JSON API's request fields, checked: every bad value raises ``InputError`` with one line naming the field
and the fix (the server answers it with a 400)."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from condfip.errors import InputError

KINDS = ("do", "shift")
MAX_ROWS = 20_000  # generated rows per download
MAX_PLOTTED_ROWS = 10_000  # generated rows per histogram answer
MAX_EFFECT_ROWS = 5_000  # Monte Carlo rows per effect estimate
MAX_BOOTSTRAP = 50  # each replicate re-infers the SCM: about a second on Sachs
MIN_RESAMPLES = 5  # discovery's subsamples: fewer makes each edge's confidence a coarse fraction (0, 1/4, ...)
MAX_RESAMPLES = 50  # each resample is one more search


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number(value: Any, what: str) -> float:
    """A finite JSON number (not a string, not a boolean, not NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"{what} must be a number, got {_shown(value)}; fix: send a JSON number, e.g. 1.5")
    if not math.isfinite(float(value)):
        raise InputError(f"{what} must be a finite number, got {_shown(value)}; fix: send a finite value in the "
                         f"data's units")
    return float(value)


def integer(body: dict, name: str, default: int, low: int, high: int, hint: str = "") -> int:
    """``body[name]`` as an integer in ``[low, high]`` (``default`` when absent)."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be a whole number, got {_shown(value)}; fix: send e.g. {name}={default}")
    if not low <= value <= high:
        raise InputError(f"{name}={value} is outside {low}..{high}; fix: send a value in that range{hint}")
    return value


def _shift(delta: float):
    return lambda x: x + delta


def interventions(body: dict, columns: list[str], required: bool = False) -> tuple[dict, list[dict]]:
    """``body["interventions"]``, a list of ``{"node": name, "kind": "do" | "shift", "value": number}``, as
    (the dict ``scm.do`` takes, the checked list)."""
    items = body.get("interventions", [])
    if not isinstance(items, list):
        raise InputError(f"interventions must be a list of {{node, kind, value}} objects, got {_shown(items)}; "
                         f"fix: send e.g. [{{\"node\": \"X\", \"kind\": \"do\", \"value\": 1.5}}]")
    if len(items) > len(columns):
        raise InputError(f"{len(items)} interventions for {len(columns)} nodes; fix: give each node at most one")
    out: dict = {}
    checked: list[dict] = []
    for item in items:
        if not isinstance(item, dict):
            raise InputError(f"each intervention must be an object {{node, kind, value}}, got {_shown(item)}")
        node = item.get("node")
        if not isinstance(node, str) or node not in columns:
            shown = ", ".join(repr(c) for c in columns[:10]) + (" ..." if len(columns) > 10 else "")
            raise InputError(f"intervention on unknown node {_shown(node)}; fix: choose one of {shown}")
        kind = item.get("kind", "do")
        if kind not in KINDS:
            raise InputError(f"intervention kind {_shown(kind)} for {node!r} is unknown; fix: use 'do' or 'shift'")
        if node in out:
            raise InputError(f"node {node!r} is intervened on twice; fix: give each node one intervention")
        value = number(item.get("value"), f"the value for {node!r}")
        out[node] = value if kind == "do" else _shift(value)
        checked.append({"node": node, "kind": kind, "value": value})
    if required and not out:
        raise InputError("no intervention given; fix: click a node and set its value first")
    return out, checked


def node(body: dict, name: str, columns: list[str]) -> str:
    value = body.get(name)
    if not isinstance(value, str) or value not in columns:
        raise InputError(f"{name} {_shown(value)} is not a node of the graph; fix: choose one of the data's columns")
    return value


def session(body: dict) -> str | None:
    token = body.get("session")
    if token is not None and not isinstance(token, str):
        raise InputError(f"session must be a string token or null, got {_shown(token)}")
    return token or None


def token(body: dict, name: str) -> str:
    """``body[name]``: a required string token (e.g. ``discovery``, from an earlier answer)."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(f"{name} must be the string token an earlier answer gave, got {_shown(value)}; fix: "
                         f"start again from the upload")
    return value


def edges(body: dict, columns: list[str]) -> list[tuple[str, str]] | None:
    """``body["edges"]``: a list of ``[cause, effect]`` pairs of column names (absent or null: None). Cycles
    and self-loops are the input layer's to refuse (``condfip.inputs.validate``)."""
    items = body.get("edges")
    if items is None:
        return None
    most = len(columns) * (len(columns) - 1) // 2  # a DAG has no more
    if not isinstance(items, list) or len(items) > most:
        raise InputError(f"edges must be a list of at most {most} [cause, effect] pairs, got {_shown(items)}; fix: "
                         f"send e.g. [[\"X\", \"Y\"]]")
    out = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(name, str) for name in item)):
            raise InputError(f"each edge must be a [cause, effect] pair of node names, got {_shown(item)}")
        for name in item:
            if name not in columns:
                raise InputError(f"the edge {item[0]} -> {item[1]} names {name!r}, which is not a column of the "
                                 f"data; fix: use the data's column names")
        out.append((item[0], item[1]))
    return out
