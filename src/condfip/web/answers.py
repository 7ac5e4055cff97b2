"""What the page's JSON API answers, computed with the library's API on one :class:`Workspace`.

Every function takes already-checked arguments (``condfip.web.fields``) and returns plain JSON-able values.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from condfip.errors import InputError
from condfip.report import LOW_CONFIDENCE
from condfip.web.workspace import Workspace, edge_marks, layout

BINS = 30


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _refuse_non_finite(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame`` when every value is finite; otherwise the intervention drove the SCM where it overflows."""
    bad = [c for c in frame.columns if not np.isfinite(frame[c].to_numpy()).all()]
    if bad:
        raise InputError(f"{what} gives non-finite values for {bad}; fix: choose values nearer the data")
    return frame


def summary(workspace: Workspace) -> dict:
    """The dataset, the DAG with its layout and where it came from (``scm.graph_source``: given, or discovered,
    then each edge carries its confidence), each node's slider bounds and the trust report per node."""
    report = workspace.report()
    table = report.table
    rows = []
    for node_name, row in table.iterrows():
        rows.append({"node": node_name, "parents": int(row["parents"]), "r2": _finite(row["r2"]),
                     "noise_std": _finite(row["noise_std"]), "noise_kurtosis": _finite(row["noise_kurtosis"]),
                     "dependence": _finite(row["dependence"]), "p_value": _finite(row["p_value"]),
                     "independent": None if row["independent"] is None else bool(row["independent"]),
                     "max_abs_z": _finite(row["max_abs_z"])})
    return {"name": workspace.name, "rows": len(workspace.data), "context_rows": len(workspace.scm.context),
            "nodes": workspace.columns, "edges": [list(e) for e in workspace.graph.edges],
            "graph": {"source": workspace.scm.graph_source, "edges": edge_marks(workspace.graph),
                      "low_confidence": LOW_CONFIDENCE},
            "layout": layout(workspace), "sliders": {c: workspace.slider(c) for c in workspace.columns},
            "report": {"rows": rows, "warnings": list(report.warnings), "source": report.source},
            "notes": list(workspace.notes)}


def _histogram(observed: np.ndarray, intervened: np.ndarray) -> dict:
    both = np.concatenate([observed, intervened])
    low, high = np.quantile(both, [0.005, 0.995])
    if not high > low:
        low, high = float(both.min()) - 0.5, float(both.max()) + 0.5
    edges = np.linspace(low, high, BINS + 1)
    width = edges[1] - edges[0]
    obs, _ = np.histogram(np.clip(observed, low, high), bins=edges)
    itv, _ = np.histogram(np.clip(intervened, low, high), bins=edges)
    return {"edges": edges.tolist(), "observational": (obs / (len(observed) * width)).tolist(),
            "interventional": (itv / (len(intervened) * width)).tolist()}


def intervene(workspace: Workspace, interventions: dict, checked: list[dict], n: int, seed: int) -> dict:
    """Observational vs interventional samples (the same ``n`` noise draws: ``sample(n, seed=seed)`` on both
    SCMs) of every intervened and downstream node: histograms, means and the mean shift."""
    start = time.perf_counter()
    observed = workspace.observational(n, seed)
    intervened = workspace.scm.do(interventions).sample(n, seed=seed) if interventions else observed
    _refuse_non_finite(intervened, "this intervention")
    targets = [c["node"] for c in checked]
    shown = [c for c in workspace.columns if c in targets] + workspace.downstream(targets)
    nodes = []
    for name in shown:
        obs, itv = observed[name].to_numpy(), intervened[name].to_numpy()
        nodes.append({"node": name, "intervened": name in targets, "observational_mean": float(obs.mean()),
                      "interventional_mean": float(itv.mean()), "shift": float(itv.mean() - obs.mean()),
                      "histogram": _histogram(obs, itv)})
    warnings = [w for c in checked if (w := workspace.beyond_data(c["node"], c["kind"], c["value"]))]
    return {"interventions": checked, "n": n, "seed": seed, "nodes": nodes, "warnings": warnings,
            "seconds": time.perf_counter() - start}


def effect(workspace: Workspace, interventions: dict, target: str, n: int, bootstrap: int, seed: int) -> dict:
    """``scm.effect(target, interventions)``: E[target | do] - E[target] with its 95% interval
    (context bootstrap: each replicate re-infers the SCM from resampled context rows; plus the calibrated model
    error for the shipped weights)."""
    start = time.perf_counter()
    result = workspace.scm.effect(target, interventions, None, n=n, bootstrap=bootstrap, seed=seed, level=0.95)
    row = result.as_row()
    return {"target": target, "intervention": row["intervention"], "reference": row["reference"],
            "effect": _finite(row["effect"]), "low": _finite(row["low"]), "high": _finite(row["high"]),
            "level": row["level"], "n": n, "replicates": row["replicates"], "text": str(result),
            "seconds": time.perf_counter() - start}


def counterfactual(workspace: Workspace, interventions: dict, row: int) -> dict:
    """Row ``row`` of the data (by position) and what it would have been under ``interventions``."""
    factual = workspace.data.iloc[[row]]
    values = workspace.scm.counterfactual(factual, interventions) if interventions else factual
    _refuse_non_finite(values, "this counterfactual")
    label = factual.index[0]
    return {"row": row, "label": label.item() if hasattr(label, "item") else str(label),
            "values": [{"node": c, "factual": float(factual[c].iloc[0]), "counterfactual": float(values[c].iloc[0])}
                       for c in workspace.columns]}


def samples_csv(workspace: Workspace, interventions: dict, n: int, seed: int) -> str:
    """``n`` rows generated under ``interventions`` (none: observational), as CSV text."""
    scm = workspace.scm.do(interventions) if interventions else workspace.scm
    frame = _refuse_non_finite(scm.sample(n, seed=seed), "this intervention")
    return frame.to_csv(index=False)
