"""Trust signals for an inferred SCM.

``report(scm, data=None)`` returns a :class:`Report`: one row per node and a list of warnings.

Per node (on the context rows, or on the rows of ``data`` when given, e.g. held-out rows):

- ``r2``: how much of the node's variance its mechanism explains, ``1 - mean((x - f(x))^2) / var(x)``
  (roots have no mechanism: NaN);
- ``noise_std`` and ``noise_kurtosis`` (excess kurtosis) of the abducted noise ``x - f(x)``;
- ``dependence``: the largest absolute Spearman correlation between the abducted noise and any parent,
  and between the noise's magnitude ``|n|`` (the same ranks as ``n^2``) and any parent. Additive noise
  must be independent of the parents; a mechanism that misses part of the signal leaves the first
  correlation, heteroscedastic noise the second;
- ``p_value``: under independence ``rho * sqrt(rows - 1)`` is about standard normal for each pair; the node's
  p-value is the smallest pair p-value times the number of pairs (Bonferroni within the node);
  ``independent`` is False when it falls below ``alpha / (number of nodes with parents)`` (Bonferroni across
  nodes). A simple screen, not HSIC: it sees monotone dependence and monotone changes of spread only;
- ``max_abs_z``: the largest value in context standard deviations; ``outside_context``: the share of
  the rows outside the context's range (0 on the context itself).

Warnings are only those with a measured accuracy loss behind them (each says which): a context smaller than
the smallest training context (the model card's ``train.context_sizes``), rows outside the context range,
noise that depends on the parents and mechanisms worse than a constant on the rows. The table still shows
the tails (``max_abs_z``) and the noise's kurtosis; they warn no more, as no measured loss stands behind them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from condfip.errors import ExtrapolationWarning, InputError

ALPHA = 0.01  # family-wise level of the independence screen
LOW_CONFIDENCE = 0.5  # a discovered edge less likely right than wrong (condfip.edge_confidence) is flagged
OUTSIDE_SHARE = 0.05  # warn when more than this share of the given rows lies outside the context range
SMALL_CONTEXT_NOISE_RATIO = 1.6  # docs/results/full: condfip noise RMSE, n = 50 over n = 400, median of 16 cells


@dataclass
class Report:
    """Trust signals: ``table`` (one row per node) and ``warnings`` (one line each)."""

    table: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    rows: int = 0
    source: str = "context rows"

    def __str__(self) -> str:
        with pd.option_context("display.width", 140, "display.max_columns", 20):
            text = self.table.to_string(float_format=lambda v: f"{v:.3g}")
        lines = [f"condfip report on {self.rows} {self.source}", text]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines.extend(f"- {w}" for w in self.warnings)
        else:
            lines.append("no warnings")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# statistics


def _ranks(x: np.ndarray) -> np.ndarray:
    """Column-wise average ranks."""
    return pd.DataFrame(x).rank(axis=0).to_numpy()


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of vector ``a`` with every column of ``b`` (0 where a side is constant)."""
    ra = _ranks(a[:, None])[:, 0]
    rb = _ranks(b)
    ra = ra - ra.mean()
    rb = rb - rb.mean(axis=0)
    denom = np.sqrt((ra**2).sum() * (rb**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra @ rb) / denom
    return np.where(denom > 0, rho, 0.0)


def _normal_p(rho: float, rows: int) -> float:
    """Two-sided p-value of a Spearman correlation under independence (normal approximation)."""
    return math.erfc(abs(rho) * math.sqrt(max(rows - 1, 1)) / math.sqrt(2.0))


def _excess_kurtosis(x: np.ndarray) -> float:
    centred = x - x.mean()
    var = (centred**2).mean()
    return float((centred**4).mean() / var**2 - 3.0) if var > 0 else float("nan")


# --------------------------------------------------------------------------------------------------
# the report


def _training_ranges(card: dict) -> tuple[tuple[int, int] | None, tuple[int, int] | None, str]:
    """(node range, context-size range, prior name) of the model card's training config, where known."""
    train = card.get("train") or {}
    prior = train.get("prior")
    nodes = None
    name = prior if isinstance(prior, str) else "custom"
    if isinstance(prior, dict) and prior.get("nodes"):
        nodes = tuple(int(v) for v in prior["nodes"])
    elif isinstance(prior, str):
        try:
            from condfip.simulate import PRESETS

            if prior in PRESETS:
                nodes = tuple(int(v) for v in PRESETS[prior].nodes)
        except ImportError:  # pragma: no cover - the simulator ships with condfip
            nodes = None
    sizes = train.get("context_sizes")
    contexts = (int(min(sizes)), int(max(sizes))) if sizes else None
    return nodes, contexts, name


def report(scm, data=None, *, alpha: float = ALPHA) -> Report:
    """Trust signals of ``scm`` per node, on its context rows or on the rows of ``data`` (see module doc).

    ``scm`` is an :class:`~condfip.inference.InferredSCM` (any :class:`~condfip.scm.SCM` works when
    ``data`` is given; the training-range warnings then need a ``card``)."""
    context = getattr(scm, "context", None)
    if data is None:
        if context is None:
            raise InputError("report() needs data for an SCM without context rows; fix: pass data=DataFrame")
        data, source = context, "context rows"
    else:
        named = data.attrs.get("source") if isinstance(data, pd.DataFrame) else None
        source = f"rows of {named}" if named else "given rows"
    with warnings.catch_warnings():  # rows beyond the context's range: the report's own warning says it
        warnings.simplefilter("ignore", ExtrapolationWarning)
        x, _ = scm._as_array(data, "data")
        if len(x) < 3:
            raise InputError(f"report() needs at least 3 rows, got {len(x)}; fix: pass more rows")
        noise = scm.noise(data).to_numpy()
    columns = scm.columns
    rows, d = x.shape
    ref = context.to_numpy() if context is not None else x
    mean, std = ref.mean(axis=0), ref.std(axis=0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    graph = scm._graph
    parent_lists = [[columns.index(p) for p in graph.predecessors(c)] for c in columns]
    with_parents = max(1, sum(1 for ps in parent_lists if ps))
    threshold = alpha / with_parents

    records = []
    for j, node in enumerate(columns):
        parents = parent_lists[j]
        var = x[:, j].var()
        r2 = 1.0 - (noise[:, j] ** 2).mean() / var if parents and var > 0 else float("nan")
        dep, pval, indep, worst = float("nan"), float("nan"), None, ""
        if parents:
            px = x[:, parents]
            rho_level = _spearman(noise[:, j], px)
            rho_spread = _spearman(np.abs(noise[:, j] - np.median(noise[:, j])), px)
            both = np.concatenate([np.abs(rho_level), np.abs(rho_spread)])
            k = int(np.argmax(both))
            dep = float(both[k])
            worst = columns[parents[k % len(parents)]]
            pval = min(1.0, len(both) * _normal_p(dep, rows))
            indep = bool(pval >= threshold)
        z = np.abs((x[:, j] - mean[j]) / std[j])
        records.append({
            "node": node,
            "parents": len(parents),
            "r2": r2,
            "noise_std": float(noise[:, j].std(ddof=1)),
            "noise_kurtosis": _excess_kurtosis(noise[:, j]),
            "dependence": dep,
            "most_dependent_parent": worst,
            "p_value": pval,
            "independent": indep,
            "max_abs_z": float(z.max()),
            "outside_context": float(((x[:, j] < lo[j]) | (x[:, j] > hi[j])).mean()),
        })
    table = pd.DataFrame.from_records(records).set_index("node")
    lines = _warnings(scm, table, rows, d, source, alpha)
    return Report(table=table, warnings=lines, rows=rows, source=source)


def _warnings(scm, table: pd.DataFrame, rows: int, d: int, source: str, alpha: float) -> list[str]:
    """Only warnings with a measured accuracy loss behind them (each says which): a context smaller than the
    smallest training context (the benchmark's error grows as the context shrinks), rows beyond the context's
    range (extrapolation), and misfit measured on the rows themselves (noise that depends on the parents, R^2 < 0).
    The number of nodes (d = 50 and 100 measure as accurate as d = 20) and contexts above 400 rows (n = 1000
    measures better than 400) earn no warning."""
    out: list[str] = []
    card = getattr(scm, "card", None) or {}
    _, contexts, _ = _training_ranges(card)
    context = getattr(scm, "context", None)
    if contexts and context is not None and len(context) < contexts[0]:
        out.append(f"the context has {len(context)} rows, fewer than the smallest training context ({contexts[0]}); "
                   f"accuracy falls as the context shrinks (on the benchmark, docs/results/full, condfip's noise "
                   f"error at n = 50 is a median {SMALL_CONTEXT_NOISE_RATIO:g}x that at n = 400 over 16 cells; below "
                   f"50 rows it is unmeasured); supply more rows if you can")
    outside = table.index[table["outside_context"] > OUTSIDE_SHARE].tolist()
    if outside:
        out.append(f"more than {OUTSIDE_SHARE:.0%} of the {source} lie outside the context's range for node(s) "
                   f"{outside}; the mechanisms extrapolate there, so answers on those rows are a guess")
    for node, row in table.iterrows():
        if row["independent"] is False:
            out.append(f"the noise of {node!r} depends on its parent {row['most_dependent_parent']!r} on the "
                       f"{source} (|Spearman| {row['dependence']:.2f}, Bonferroni p {row['p_value']:.2g} < "
                       f"{alpha:g}): a misfit mechanism, a missing parent or confounder, or noise whose spread "
                       f"depends on the parents")
    bad_r2 = table.index[(table["parents"] > 0) & (table["r2"] < 0)].tolist()
    if bad_r2:
        out.append(f"the mechanism of node(s) {bad_r2} explains less than a constant would (R^2 < 0) on the "
                   f"{source}")
    out.extend(_low_confidence_edges(scm._graph))
    return out


def is_low_confidence(attrs: dict) -> bool:
    """Whether an edge (its attributes in a graph from ``condfip.discover``) is flagged: a discovered, not
    required, edge with ``confidence`` (its estimated chance of being right) below ``LOW_CONFIDENCE``."""
    return (attrs.get("confidence") is not None and not attrs.get("given")
            and float(attrs["confidence"]) < LOW_CONFIDENCE)


def _low_confidence_edges(graph) -> list[str]:
    """One warning listing the edges (of a discovered graph) whose ``confidence`` is low."""
    low = sorted((attrs["confidence"], str(u), str(v)) for u, v, attrs in graph.edges(data=True)
                 if is_low_confidence(attrs))
    if not low:
        return []
    shown = ", ".join(f"{u} -> {v} ({c:.2f})" for c, u, v in low[:8]) + (" ..." if len(low) > 8 else "")
    return [(f"{len(low)} edge(s) of the discovered graph have confidence below {LOW_CONFIDENCE:g} (more "
            f"likely wrong than right, judged by how stable they were over subsamples): {shown}; answers that "
            f"depend on them are uncertain: check them, or give the edges you know as required/forbidden "
            f"knowledge to condfip.discover")]
