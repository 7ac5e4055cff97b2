"""Average causal effects with a bootstrap interval.

``average_effect(scm, target, interventions, reference=None)`` estimates
``E[target | do(interventions)] - E[target | do(reference)]`` (``reference=None``: no intervention, i.e. the
observational mean) by pushing the same ``n`` noise draws through both intervened SCMs (common random
numbers: the Monte Carlo noise largely cancels in the difference).

The interval (``method="context"``, the default for an inferred SCM) is a percentile bootstrap over the
context rows: each replicate resamples the context rows with replacement, **re-infers** the SCM from them
(one forward pass of the network, no training) and re-estimates the effect with fresh noise draws. It
therefore covers the uncertainty of the inferred mechanisms and noise given a finite context, plus the
Monte Carlo error. ``method="noise"`` (any SCM) only redraws the noise: it covers the Monte Carlo error
alone, not the uncertainty about the mechanisms.

Cost: ``1 + bootstrap`` forward passes of the encoder on the context, plus ``2 * (longest path + 1)``
decoder calls on ``n`` rows per replicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from condfip.errors import InputError

METHODS = ("context", "noise")


def _describe(interventions) -> str:
    if not interventions:
        return "no intervention"
    parts = []
    for node, value in interventions.items():
        parts.append(f"do({node}=shift)" if callable(value) else f"do({node}={value:g})")
    return ", ".join(parts)


@dataclass
class Effect:
    """An average causal effect with its bootstrap interval (``low``, ``high`` at ``level``)."""

    target: str
    intervention: str
    reference: str
    estimate: float
    low: float
    high: float
    level: float
    n: int
    method: str
    replicates: np.ndarray = field(repr=False)

    def __float__(self) -> float:
        return float(self.estimate)

    def __str__(self) -> str:
        return (f"E[{self.target} | {self.intervention}] - E[{self.target} | {self.reference}] = "
                f"{self.estimate:.4g}  ({self.level:.0%} interval {self.low:.4g} to {self.high:.4g}; "
                f"{len(self.replicates)} bootstrap replicates over the {self.method}, n={self.n})")

    def as_row(self) -> dict:
        return {"target": self.target, "intervention": self.intervention, "reference": self.reference,
                "effect": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "n": self.n, "replicates": len(self.replicates), "method": self.method}


def _means(scm, interventions, reference, eps: np.ndarray) -> np.ndarray:
    """Per-node difference of means between the two intervened SCMs on the same noise rows."""
    alt = scm.do(interventions).solve(eps).mean(axis=0)
    ref = (scm.do(reference) if reference else scm).solve(eps).mean(axis=0)
    return alt - ref


def _resampled(scm, rng: np.random.Generator, tries: int = 20):
    """The SCM re-inferred from a bootstrap resample of its context rows (skipping constant resamples)."""
    from condfip.inference import InferredSCM

    context = scm.context
    for _ in range(tries):
        rows = rng.integers(0, len(context), len(context))
        sample = context.iloc[rows]
        if (sample.nunique() > 1).all():
            break
    else:
        raise InputError("bootstrap resamples of the context keep producing constant columns; "
                         "fix: supply more context rows or use method='noise'")
    new = InferredSCM(scm.network, scm.card, sample, scm._graph, abduction=scm.abduction,
                      noise_model=scm.noise_model, default_n=scm.default_n)
    return new.do(scm.interventions) if scm.interventions else new


def effect_table(scm, interventions, reference=None, *, n: int = 1000, bootstrap: int = 50,
                 seed: int | None = 0, method: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Effects on every node at once: (estimate per node, replicates x nodes), see :func:`average_effect`."""
    if method is None:
        method = "context" if hasattr(scm, "context") and hasattr(scm, "network") else "noise"
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if method == "context" and not hasattr(scm, "context"):
        raise InputError("method='context' needs an inferred SCM (with context rows); fix: use method='noise'")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise InputError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")
    interventions = scm._check_interventions(interventions)
    reference = scm._check_interventions(reference) if reference else {}
    rng = np.random.default_rng(seed)
    estimate = _means(scm, interventions, reference, scm.draw_noise_array(int(n), rng))
    return estimate, bootstrap_replicates(scm, interventions, reference, n=int(n), bootstrap=int(bootstrap),
                                          rng=rng, method=method)


def bootstrap_replicates(scm, interventions, reference, *, n: int, bootstrap: int, rng: np.random.Generator,
                         method: str = "context") -> np.ndarray:
    """Bootstrap replicates (replicates x nodes) of the per-node effects; interventions already checked."""
    replicates = np.empty((bootstrap, len(scm.columns)))
    for b in range(bootstrap):
        model = _resampled(scm, rng) if method == "context" else scm
        replicates[b] = _means(model, interventions, reference or {}, model.draw_noise_array(n, rng))
    return replicates


def average_effect(scm, target: str, interventions, reference=None, *, n: int = 1000, bootstrap: int = 50,
                   seed: int | None = 0, level: float = 0.95, method: str | None = None) -> Effect:
    """``E[target | do(interventions)] - E[target | do(reference)]`` with a percentile bootstrap interval.

    ``interventions`` and ``reference`` are dicts ``{node: value}`` (hard) or ``{node: callable}`` (shift),
    in the data's units; ``reference=None`` compares with no intervention. ``method``: ``"context"``
    (resample the context rows and re-infer; default for an inferred SCM) or ``"noise"`` (redraw the noise
    only). The SCM's own interventions, if any, stay in force in both arms."""
    if str(target) not in scm.columns:
        raise InputError(f"unknown target node {target!r}; choose one of {scm.columns}")
    if not (isinstance(level, float | int) and 0 < level < 1):
        raise InputError(f"level must be between 0 and 1, got {level!r}")
    estimate, replicates = effect_table(scm, interventions, reference, n=n, bootstrap=bootstrap, seed=seed,
                                        method=method)
    j = scm.columns.index(str(target))
    reps = replicates[:, j]
    if len(reps):
        low, high = np.quantile(reps, [(1 - level) / 2, 1 - (1 - level) / 2])
    else:
        low = high = float("nan")
    used = method or ("context" if hasattr(scm, "network") else "noise")
    return Effect(target=str(target), intervention=_describe(interventions), reference=_describe(reference),
                  estimate=float(estimate[j]), low=float(low), high=float(high), level=float(level), n=int(n),
                  method="context rows" if used == "context" else "noise draws", replicates=reps)
