"""Trust signals for an inferred SCM, and the memory check that runs before inference.

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

Warnings flag what falls outside what the model was trained on (the model card in ``scm.card``: the
``train`` config's ``prior`` preset gives the node range, ``context_sizes`` the context sizes): the number of
nodes, the number of context rows, values far in the tails, rows outside the context range, heavy-tailed
noise, noise that depends on the parents and mechanisms worse than a constant.

:func:`check_memory` estimates the peak memory of ``infer`` (and of one decoder chunk when sampling) and
refuses a problem that does not fit; ``CONDFIP_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix) overrides the
available memory read from ``/proc/meminfo``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from condfip.errors import InputError

ALPHA = 0.01  # family-wise level of the independence screen
FAR_TAIL_Z = 6.0  # values beyond this many context standard deviations are rare in the training data
HEAVY_KURTOSIS = 10.0  # the heaviest training noise (Student-t, 3 to 10 degrees of freedom) rarely exceeds it
LOW_CONFIDENCE = 0.5  # a discovered edge found in fewer than this share of bootstrap resamples is flagged
OUTSIDE_SHARE = 0.05  # warn when more than this share of the given rows lies outside the context range
MEMORY_ENV = "CONDFIP_MEMORY_LIMIT"
QUERY_CHUNK = 4096  # rows per decoder call (condfip.inference.ROW_CHUNK)


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
        source = "given rows"
    x, _ = scm._as_array(data, "data")
    columns = scm.columns
    rows, d = x.shape
    if rows < 3:
        raise InputError(f"report() needs at least 3 rows, got {rows}; fix: pass more rows")
    noise = scm.noise(data).to_numpy()
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
    warnings = _warnings(scm, table, rows, d, source, alpha)
    return Report(table=table, warnings=warnings, rows=rows, source=source)


def _warnings(scm, table: pd.DataFrame, rows: int, d: int, source: str, alpha: float) -> list[str]:
    out: list[str] = []
    card = getattr(scm, "card", None) or {}
    nodes, contexts, prior = _training_ranges(card)
    if nodes and not nodes[0] <= d <= nodes[1]:
        out.append(f"the graph has {d} nodes but the model was trained on {nodes[0]}-{nodes[1]} nodes "
                   f"(prior {prior!r}); expect lower accuracy")
    context = getattr(scm, "context", None)
    if contexts and context is not None:
        n_ctx = len(context)
        if n_ctx < contexts[0]:
            out.append(f"the context has {n_ctx} rows, fewer than the smallest training context ({contexts[0]}); "
                       f"the mechanisms are less certain, supply more rows if you can")
        elif n_ctx > contexts[1]:
            out.append(f"the context has {n_ctx} rows, more than the largest training context ({contexts[1]}); "
                       f"the dataset code drifts with the context size, compare with a {contexts[1]}-row subsample")
    far = table.index[table["max_abs_z"] > FAR_TAIL_Z].tolist()
    if far:
        worst = table.loc[far, "max_abs_z"].idxmax()
        out.append(f"node(s) {far} have values more than {FAR_TAIL_Z:g} standard deviations from the context mean "
                   f"({worst!r}: {table.loc[worst, 'max_abs_z']:.1f}); the training data rarely goes that far, "
                   f"consider a log transform or removing outliers")
    outside = table.index[table["outside_context"] > OUTSIDE_SHARE].tolist()
    if outside:
        out.append(f"more than {OUTSIDE_SHARE:.0%} of the {source} lie outside the context's range for node(s) "
                   f"{outside}; the mechanisms extrapolate there")
    heavy = table.index[table["noise_kurtosis"] > HEAVY_KURTOSIS].tolist()
    if heavy:
        out.append(f"the abducted noise of node(s) {heavy} is heavier-tailed (excess kurtosis up to "
                   f"{table.loc[heavy, 'noise_kurtosis'].max():.1f}) than the model's training noises")
    for node, row in table.iterrows():
        if row["independent"] is False:
            out.append(f"the noise of {node!r} depends on its parent {row['most_dependent_parent']!r} "
                       f"(|Spearman| {row['dependence']:.2f}, Bonferroni p {row['p_value']:.2g} < {alpha:g}): "
                       f"a misfit mechanism, a missing parent or confounder, or noise whose spread depends "
                       f"on the parents")
    bad_r2 = table.index[(table["parents"] > 0) & (table["r2"] < 0)].tolist()
    if bad_r2:
        out.append(f"the mechanism of node(s) {bad_r2} explains less than a constant would (R^2 < 0) on the "
                   f"{source}")
    out.extend(_low_confidence_edges(scm._graph))
    return out


def _low_confidence_edges(graph) -> list[str]:
    """One warning listing the edges (of a discovered graph) whose bootstrap ``confidence`` is low."""
    low = sorted((attrs["confidence"], str(u), str(v)) for u, v, attrs in graph.edges(data=True)
                 if attrs.get("confidence") is not None and not attrs.get("given")
                 and float(attrs["confidence"]) < LOW_CONFIDENCE)
    if not low:
        return []
    shown = ", ".join(f"{u} -> {v} ({c:.2f})" for c, u, v in low[:8]) + (" ..." if len(low) > 8 else "")
    return [(f"{len(low)} edge(s) of the discovered graph have bootstrap confidence below {LOW_CONFIDENCE:g}: "
            f"{shown}; answers that depend on them are uncertain: check them, or give the edges you know as "
            f"required/forbidden knowledge to condfip.discover")]


# --------------------------------------------------------------------------------------------------
# memory


def estimate_infer_memory(n_context: int, d: int, config, query_rows: int = QUERY_CHUNK) -> int:
    """Estimated peak bytes of ``infer`` (encoder over the context: sample-attention scores dominate,
    ``3 * heads * d * n^2`` floats) and of one decoder chunk of ``query_rows`` rows (node attention
    ``3 * heads * rows * d^2`` floats), whichever is larger. ``n_context`` is capped at ``max_context``.
    Calibrated on CPU float32: within about 15% for d = 10-60, n = 500-1000."""
    cfg = config if isinstance(config, dict) else config.to_dict()
    n = min(int(n_context), int(cfg.get("max_context", n_context)))
    h, heads, ratio = int(cfg["width"]), int(cfg["heads"]), int(cfg.get("mlp_ratio", 2))
    per_token = (2 * ratio + 8) * h
    encoder = 4 * (3 * heads * d * n * n + per_token * d * n)
    decoder = 4 * (3 * heads * query_rows * d * d + per_token * query_rows * d)
    return int(max(encoder, decoder))


def _parse_bytes(text: str) -> int:
    units = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B") if text.strip() else ""
    suffix = raw[-1:] if raw[-1:] in units else ""
    number = raw[:-1] if suffix else raw
    try:
        value = float(number) * units[suffix]
    except ValueError:
        raise InputError(f"{MEMORY_ENV}={text!r} is not a size; fix: set it to bytes, e.g. 8G or 500M") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{MEMORY_ENV}={text!r} must be a positive size; fix: set it to e.g. 8G")
    return int(value)


def available_memory() -> int | None:
    """Bytes available for a new allocation: ``CONDFIP_MEMORY_LIMIT`` if set, else MemAvailable."""
    override = os.environ.get(MEMORY_ENV)
    if override:
        return _parse_bytes(override)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def check_memory(n_context: int, d: int, config, available: int | None = None) -> int:
    """Refuse (InputError) a problem whose estimated peak memory exceeds the available memory.
    Returns the estimate in bytes."""
    need = estimate_infer_memory(n_context, d, config)
    have = available if available is not None else available_memory()
    if have is not None and need > have:
        cfg = config if isinstance(config, dict) else config.to_dict()
        n = min(int(n_context), int(cfg.get("max_context", n_context)))
        raise InputError(
            f"the problem is too large for memory: inferring {d} nodes from {n} context rows needs about "
            f"{_size(need)} but {_size(have)} is available; fix: use fewer nodes (a subgraph) or fewer rows, "
            f"free memory, or set {MEMORY_ENV} to override the limit"
        )
    return need
