"""Average causal effects with an interval: a bootstrap over the context rows plus a calibrated model error.

``average_effect(scm, target, interventions, reference=None)`` estimates
``E[target | do(interventions)] - E[target | do(reference)]`` (``reference=None``: no intervention, i.e. the
observational mean) by pushing the same ``n`` noise draws through both intervened SCMs (common random
numbers: the Monte Carlo noise largely cancels in the difference).

**What the interval covers, and what it does not.** With ``method="context"`` (the default for an inferred SCM)
the interval has two parts. The *resampling* part is a bootstrap over the context rows: each replicate resamples
the context rows with replacement, re-infers the SCM from them (kernel mechanisms: refits each node's regression
on the resampled rows with the kernel and ridge the SCM chose; network mechanisms: a new encoder pass) and
re-estimates the effect; its SD says how much the answer moves when the context rows are resampled (plus Monte
Carlo error). That alone misses the model's own error (a mechanism it misjudges the same way on every resample):
on held-out simulated SCMs its 95% interval contained the true effect 85% of the time with kernel mechanisms and
about half the time with the network's decoder. The *model-error* part adds ``c * size``, where ``size``
(:func:`model_scale`) is how far the question moves the intervened ancestors of the target, in units of how
freely each varies beside its co-parents in the context, times the target's SD, and ``c`` is calibrated by split
conformal prediction on simulated SCMs of the training prior (``weights/effect.json``, written by
``tools/effect_coverage.py calibrate``; the README gives the coverage measured on held-out simulated SCMs). The
interval is ``estimate +- (z * SD + c * size)``, so it always contains its estimate; it is calibrated on the
simulator's prior, not guaranteed on your data, and only for the weights and mechanisms it was calibrated with
(others get the resampling part alone, and say so). Fewer than ``MIN_REPLICATES`` replicates are refused
(``bootstrap=0``: the estimate alone). ``method="noise"`` (any SCM) only redraws the noise: Monte Carlo error
alone.

Speed: the replicates are refitted in closed form (kernel) or go through the network in batches (one encoder
pass over a batch of resampled contexts ``(B, n, d)``); then the fixed point runs for all ``B`` at once, and
every replicate reuses the same uniform draws
for its noise (each maps them through its own noise marginals), so the replicates differ by their context
rows only; ``REPLICATE_DRAWS`` of them per replicate, and only the target's ancestors are settled.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch

from condfip.errors import ExtrapolationWarning, InputError
from condfip.scm import ancestral_columns

METHODS = ("context", "noise")
# noise draws per context-bootstrap replicate: the replicates share their draws, so their spread is the context
# resampling's; 250 draws gave the same SD as 1,000 (0.131 vs 0.132 on the README's example) at a quarter of
# the fixed-point work. The point estimate keeps all ``n`` draws.
REPLICATE_DRAWS = 250
# the model-error calibration of the shipped weights: (|error|, SD of the replicates, size) on simulated SCMs
CALIBRATION_FILE = Path(__file__).parent / "weights" / "effect.json"


def _describe(interventions) -> str:
    if not interventions:
        return "no intervention"
    parts = []
    for node, value in interventions.items():
        parts.append(f"do({node}=shift)" if callable(value) else f"do({node}={value:g})")
    return ", ".join(parts)


@dataclass
class Effect:
    """An average causal effect with its interval (``low``, ``high`` at ``level``): ``estimate +- (z *
    resampling_sd + model_error)``; ``model_error`` is 0 where no calibration applies (see ``covers``)."""

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
    resampling_sd: float = float("nan")
    model_error: float = 0.0
    calibrated: bool = False

    def __float__(self) -> float:
        return float(self.estimate)

    @property
    def covers(self) -> str:
        """What the interval covers, in words."""
        if self.method == "context rows" and self.calibrated:
            return ("resampling of the context rows and the model's error as calibrated on simulated SCMs "
                    "(not a guarantee on your data)")
        if self.method == "context rows":
            return ("resampling of the context rows only, not the model's own error (no model-error "
                    "calibration for these weights and mechanisms)")
        return "Monte Carlo noise only"

    def __str__(self) -> str:
        return (f"E[{self.target} | {self.intervention}] - E[{self.target} | {self.reference}] = "
                f"{self.estimate:.4g}  ({self.level:.0%} interval {self.low:.4g} to {self.high:.4g}, covering "
                f"{self.covers}; {len(self.replicates)} bootstrap replicates over the {self.method}, n={self.n})")

    def as_row(self) -> dict:
        return {"target": self.target, "intervention": self.intervention, "reference": self.reference,
                "effect": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "n": self.n, "replicates": len(self.replicates), "method": self.method,
                "resampling_sd": self.resampling_sd, "model_error": self.model_error,
                "interval_covers": self.covers}


def load_calibration(path: str | Path | None = None) -> dict | None:
    """The model-error calibration (``weights_sha256``, ``rows`` of [|error|, SD, size]; default: the shipped
    ``CALIBRATION_FILE``), or None if absent."""
    path = Path(CALIBRATION_FILE if path is None else path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def conformal_quantile(rows, level: float) -> float:
    """Split-conformal ``c`` at ``level`` from calibration rows [|error|, SD of the replicates, size]: the
    ceil((N + 1) * level)-th smallest of max(0, |error| - z * SD) / size (z the normal quantile of ``level``),
    so that on a new SCM drawn like the calibration set's, ``|error| <= z * SD + c * size`` with probability at
    least ``level``."""
    rows = np.asarray(rows, dtype=float).reshape(-1, 3)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    scores = np.sort(np.maximum(0.0, rows[:, 0] - z * rows[:, 1]) / np.maximum(rows[:, 2], 1e-12))
    k = math.ceil((len(scores) + 1) * level)
    if k > len(scores):
        raise InputError(f"level={level} is more than the model-error calibration supports ({len(scores)} "
                         f"simulated SCMs: at most {len(scores) / (len(scores) + 1):.3f}); fix: pass a lower level")
    return float(scores[k - 1])


def _calibration_for(scm) -> dict | None:
    """The shipped calibration if it applies to this SCM: an inferred SCM (context bootstrap) of the weights and
    the mechanisms (``"kernel"`` or ``"network"``) it was calibrated with, empirical noise (as calibrated)."""
    calibration = load_calibration()
    card = getattr(scm, "card", None) or {}
    if calibration is None or not card.get("sha256") or card["sha256"] != calibration.get("weights_sha256"):
        return None
    if getattr(scm, "noise_model", None) != "empirical" or type(scm).__name__ != "InferredSCM":
        return None
    if getattr(scm, "mechanisms", None) != calibration.get("mechanisms", "network"):
        return None  # calibrated on the other mechanisms (files without the key predate the kernel ones)
    return calibration


def _means(scm, interventions, reference, eps: np.ndarray) -> np.ndarray:
    """Per-node difference of means between the two intervened SCMs on the same noise rows."""
    alt = scm.do(interventions).solve(eps).mean(axis=0)
    ref = (scm.do(reference) if reference else scm).solve(eps).mean(axis=0)
    return alt - ref


MIN_REPLICATES = 20  # fewer bootstrap replicates give an interval whose width is itself mostly noise
BATCH_MEMORY = 256 * 1024**2  # bytes one batched encoder pass may take (more replicates: more batches)


def _resample_rows(context: np.ndarray, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
    """Row indices of one bootstrap resample, skipping resamples with a constant column."""
    for _ in range(tries):
        rows = rng.integers(0, len(context), len(context))
        if (np.ptp(context[rows], axis=0) > 0).all():
            return rows
    raise InputError("bootstrap resamples of the context keep producing constant columns; "
                     "fix: supply more context rows or use method='noise'")


def _batch_code(code, part):
    """A DatasetCode whose tensor fields (batch first) are cut by ``part`` (any field, any number of them)."""
    return type(code)(*(None if field is None else field[part] for field in code))


def _cat_codes(codes: list):
    """DatasetCodes of consecutive batches joined along the batch (any fields)."""
    return type(codes[0])(*(None if fields[0] is None else torch.cat(fields) for fields in zip(*codes)))


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of B resamples (B, n) -> each resample's distinct indices and their counts, (B, L) each,
    padded to the longest with index 0 and count 0, and where each of the n rows sits among them (B, n)."""
    found = [np.unique(r, return_counts=True, return_inverse=True) for r in rows]
    width = max(len(u) for u, _, _ in found)
    index, counts = np.zeros((len(rows), width), dtype=np.int64), np.zeros((len(rows), width))
    position = np.empty(rows.shape, dtype=np.int64)
    for b, (u, inverse, c) in enumerate(found):
        index[b, :len(u)], counts[b, :len(u)], position[b] = u, c, inverse
    return index, counts, position


class _Replicates:
    """``B`` re-inferred SCMs at once: resampled contexts (B, n, d), their standardisation and dataset codes."""

    def __init__(self, scm, rows: np.ndarray, progress=None):
        from condfip.memory import estimate_infer_memory

        context = scm.context.to_numpy()
        x = context[rows]  # (B, n, d)
        self.scm, self.network = scm, scm.network
        self.mean, self.std = x.mean(axis=1), x.std(axis=1, ddof=1)  # (B, d)
        B, n, d = x.shape
        self.adj = scm.adj.expand(B, d, d)
        counts = position = None
        if not self.network.config.decoder_context:
            # each resample's distinct rows once, with their multiplicities (about 63% of the rows): the
            # encoder's attention and statistics over them equal those over the repeated rows
            rows, counts, position = distinct_rows(rows)
            x_in = context[rows]
            counts = torch.as_tensor(counts, dtype=torch.float32)
        else:
            x_in = x
        self.context = x
        self.progress = progress or (lambda done, total: None)
        # kernel mechanisms: each replicate refits the SCM's per-node regressions on its own rows (the kernel and
        # ridge the SCM chose are kept; the distinct rows weighted by their counts); no network pass
        kernel = getattr(scm, "kernel", None)  # None: network mechanisms
        self.refits = None  # with kernel mechanisms: each replicate's KernelMechanisms
        if kernel is None:
            z = torch.as_tensor((x_in - self.mean[:, None]) / self.std[:, None], dtype=torch.float32)
            per = max(1, int(BATCH_MEMORY // max(1, estimate_infer_memory(n, d, self.network.config,
                                                                           query_rows=1))))
            self.steps = -(-B // per) + 2  # the encoder batches, then the two arms' fixed points
            codes = []
            with torch.no_grad():
                for k, start in enumerate(range(0, B, per)):
                    part = slice(start, start + per)
                    some = None if counts is None else counts[part]
                    hidden, _ = self.network.encoder(z[part], self.adj[part], counts=some)
                    codes.append(self.network.decoder.dataset_code(hidden, self.adj[part], z[part], counts=some))
                    self.progress(k + 1, self.steps)
            self.code = _cat_codes(codes)
            with torch.no_grad():  # the decoder's context memory (None without decoder_context): once per batch
                self.memory = self.network.decoder.context_memory(self.code, self.adj)
        else:
            self.steps = 3  # the refits, then the two arms' fixed points
            weights = None if counts is None else counts.double().numpy()
            z_in = (x_in - self.mean[:, None]) / self.std[:, None]
            self.refits = [kernel.refit(z_in[b], None if weights is None else weights[b]) for b in range(B)]
            self.progress(1, self.steps)
        # each replicate's context noise, where its fresh noise comes from (the mechanisms over distinct rows only)
        if position is None:
            self.pool = x - self.mechanism(x, None)
        else:
            self.pool = x - np.take_along_axis(self.mechanism(x_in, None), position[:, :, None], axis=1)

    def mechanism(self, x: np.ndarray, nodes: np.ndarray | None) -> np.ndarray:
        """f_b(x_b) for every replicate b, in the user's units: (B, m, d) -> (B, m, len(nodes) or d)."""
        cols = slice(None) if nodes is None else nodes
        if self.refits is None:
            return self.mean[:, None, cols] + self.std[:, None, cols] * self._decoder(x, nodes)
        which = np.arange(x.shape[2]) if nodes is None else np.asarray(nodes)
        z = (x - self.mean[:, None]) / self.std[:, None]
        out = np.stack([refit.predict(z[b], which) for b, refit in enumerate(self.refits)])
        return self.mean[:, None, cols] + self.std[:, None, cols] * out

    def _decoder(self, x: np.ndarray, nodes: np.ndarray | None) -> np.ndarray:
        """The network decoder's T_b(x_b) per replicate, in standardised units."""
        from condfip.memory import ROW_CHUNK

        index = None if nodes is None else torch.as_tensor(nodes)
        out = np.empty(x.shape[:2] + (x.shape[2] if nodes is None else len(nodes),))
        rows = max(1, ROW_CHUNK // max(1, x.shape[0]))
        with torch.no_grad():
            for start in range(0, x.shape[1], rows):
                part = slice(start, start + rows)
                z = torch.as_tensor((x[:, part] - self.mean[:, None]) / self.std[:, None], dtype=torch.float32)
                out[:, part] = self.network.decoder(self.code, z, self.adj, nodes=index,
                                                      memory=self.memory).double().numpy()
        return out

    def noise(self, u: np.ndarray) -> np.ndarray:
        """Fresh noise for every replicate from the same draws ``u`` (n, d): uniforms through each replicate's
        empirical marginals (linear interpolation, as np.quantile), or standard normals for a Gaussian model."""
        if self.scm.noise_model == "gaussian":
            return self.pool.mean(axis=1)[:, None] + self.pool.std(axis=1, ddof=1)[:, None] * u[None]
        ordered = np.sort(self.pool, axis=1)  # (B, n_ctx, d)
        position = u * (ordered.shape[1] - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, ordered.shape[1] - 1)
        weight = position - low
        columns = np.arange(u.shape[1])
        return (ordered[:, low, columns] * (1 - weight) + ordered[:, high, columns] * weight)

    def solve(self, eps: np.ndarray, interventions: dict, needed: np.ndarray | None = None) -> np.ndarray:
        """The fixed point of every replicate at once under ``interventions`` (hard values, shift callables).
        ``needed`` (column indices closed under ancestors): settle only those columns; the others keep ``eps``."""
        columns = self.scm.columns
        x = eps.copy()
        for nodes in self.scm._generations:
            if needed is not None:
                nodes = nodes[np.isin(nodes, needed)]
                if not len(nodes):
                    continue
            x[:, :, nodes] = self.mechanism(x, nodes) + eps[:, :, nodes]
            for j in nodes:
                value = interventions.get(columns[j])
                if callable(value):
                    for b in range(len(x)):
                        x[b, :, j] = self.scm._shift_values(j, value, x[b, :, j].copy())
                elif value is not None:
                    x[:, :, j] = value
        settled = x if needed is None else x[:, :, needed]
        self.scm._check_finite(settled.reshape(-1, settled.shape[2]), "a bootstrap replicate's result")
        return x


def model_scale(scm, target: str, effects: np.ndarray, intervened) -> float:
    """The size of the question, in the target's units: ``SD(target) * sum_k |delta_k| / s_k`` over the
    ``intervened`` nodes k (of either arm) that are ancestors of the target, where ``delta_k`` is the difference
    of k's mean between the two arms (``effects``: the per-node estimate of :func:`effect_table`) and ``s_k`` is
    how freely k varies in the context rows where its moves matter: the smallest, over k's children on a path to
    the target, of the residual SD of x_k regressed (least squares) on that child's other parents (k's own SD
    where a child has no other parent). Moving k far from where its co-parents usually put it takes the
    mechanisms off the rows they were read from, and the network's error grows with that (near-collinear
    parents make ``s_k`` small and the question large). An intervention on no ancestor has no model error: the
    target's value does not depend on it, exactly."""
    import networkx as nx

    graph = scm._graph
    x = scm.context.to_numpy(dtype=float)
    sd = x.std(axis=0, ddof=1)
    target = str(target)
    ancestors = {str(v) for v in nx.ancestors(graph, target)}
    on_path = ancestors | {target}
    index = {c: k for k, c in enumerate(scm.columns)}
    total = 0.0
    for node in sorted(set(map(str, intervened)) & ancestors):
        k = index[node]
        spread = sd[k]
        for child in set(map(str, graph.successors(node))) & on_path:
            others = [index[str(p)] for p in graph.predecessors(child) if str(p) != node]
            if others:
                design = np.column_stack([np.ones(len(x)), x[:, others]])
                residual = x[:, k] - design @ np.linalg.lstsq(design, x[:, k], rcond=None)[0]
                spread = min(spread, float(residual.std(ddof=len(others) + 1)) if len(x) > len(others) + 1
                             else 0.0)
        total += abs(float(effects[k])) / max(spread, 1e-6 * sd[k])
    return float(sd[index[target]] * total)


def _noise_draws(scm, n: int, rng: np.random.Generator) -> np.ndarray:
    """The draws every replicate shares: uniforms (empirical noise) or standard normals (Gaussian noise)."""
    shape = (n, len(scm.columns))
    return rng.standard_normal(shape) if scm.noise_model == "gaussian" else rng.random(shape)


def effect_table(scm, interventions, reference=None, *, n: int = 1000, bootstrap: int = 50,
                 seed: int | None = 0, method: str | None = None, progress=None,
                 targets: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Effects at once: (estimate per node, replicates x nodes), see :func:`average_effect`. With ``targets``
    the replicates' columns are those targets only (the bootstrap then settles only their ancestors)."""
    from condfip.scm import random_generator

    if method is None:
        method = "context" if hasattr(scm, "context") and hasattr(scm, "network") else "noise"
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if method == "context" and not hasattr(scm, "context"):
        raise InputError("method='context' needs an inferred SCM (with context rows); fix: use method='noise'")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise InputError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")
    if 0 < bootstrap < MIN_REPLICATES:
        raise InputError(f"bootstrap={bootstrap} replicates are too few for an interval (its width would itself be "
                         f"mostly noise); fix: pass bootstrap >= {MIN_REPLICATES} (default 50), or 0 for the "
                         f"estimate alone")
    interventions = scm._check_interventions(interventions)
    reference = scm._check_interventions(reference) if reference else {}
    rng = random_generator(seed)
    estimate = _means(scm, interventions, reference, scm.fresh_noise(n, rng))
    return estimate, bootstrap_replicates(scm, interventions, reference, n=int(n), bootstrap=int(bootstrap),
                                          rng=rng, method=method, progress=progress, targets=targets)


def bootstrap_replicates(scm, interventions, reference, *, n: int, bootstrap: int, rng: np.random.Generator,
                         method: str = "context", progress=None, targets: list[str] | None = None) -> np.ndarray:
    """Bootstrap replicates (replicates x nodes) of the per-node effects; interventions already checked.
    ``targets``: return those nodes' columns only, and settle only the columns they depend on (their
    ancestors). ``progress(done, total)``, if given, is called as the replicates' contexts go through the
    network."""
    columns = slice(None) if targets is None else [scm.columns.index(t) for t in targets]
    if method != "context" or bootstrap == 0:
        replicates = np.empty((bootstrap, len(scm.columns)))
        for b in range(bootstrap):
            replicates[b] = _means(scm, interventions, reference or {}, scm.draw_noise_array(n, rng))
        return replicates[:, columns]
    needed = None if targets is None else ancestral_columns(scm, targets)
    context = scm.context.to_numpy()
    rows = np.stack([_resample_rows(context, rng) for _ in range(bootstrap)])
    batch = _Replicates(scm, rows, progress)
    eps = batch.noise(_noise_draws(scm, min(n, REPLICATE_DRAWS), rng))
    with warnings.catch_warnings():  # a replicate's range differs a little from the SCM's: warned once, above
        warnings.simplefilter("ignore", ExtrapolationWarning)
        alt = batch.solve(eps, {**scm.interventions, **interventions}, needed).mean(axis=1)
        batch.progress(batch.steps - 1, batch.steps)
        ref = batch.solve(eps, {**scm.interventions, **(reference or {})}, needed).mean(axis=1)
        batch.progress(batch.steps, batch.steps)
    return (alt - ref)[:, columns]


def average_effect(scm, target: str, interventions, reference=None, *, n: int = 1000, bootstrap: int = 50,
                   seed: int | None = 0, level: float = 0.95, method: str | None = None,
                   progress=None) -> Effect:
    """``E[target | do(interventions)] - E[target | do(reference)]`` with its interval.

    ``interventions`` and ``reference`` are dicts ``{node: value}`` (hard) or ``{node: callable}`` (shift),
    in the data's units; ``reference=None`` compares with no intervention. ``method``: ``"context"``
    (resample the context rows and re-infer; default for an inferred SCM) or ``"noise"`` (redraw the noise
    only). The SCM's own interventions, if any, stay in force in both arms.

    The interval is ``estimate +- (z * SD + model_error)``: SD of ``bootstrap`` (>= 20) replicates (the
    resampling of the context rows), and a model-error term calibrated on simulated SCMs for the shipped weights
    (``covers`` says which parts apply; module docstring; README for the coverage measured on held-out SCMs)."""
    if str(target) not in scm.columns:
        raise InputError(f"unknown target node {target!r}; choose one of {scm.columns}")
    if isinstance(level, bool) or not (isinstance(level, float | int) and 0 < level < 1):
        raise InputError(f"level must be between 0 and 1, got {level!r}")
    estimate, replicates = effect_table(scm, interventions, reference, n=n, bootstrap=bootstrap, seed=seed,
                                        method=method, progress=progress, targets=[str(target)])
    j = scm.columns.index(str(target))
    reps = replicates[:, 0]
    used = method or ("context" if hasattr(scm, "network") else "noise")
    calibration = _calibration_for(scm) if used == "context" and len(reps) else None
    sd, model_error = float("nan"), 0.0
    if len(reps):
        sd = float(reps.std(ddof=1))
        if calibration is not None:
            c = conformal_quantile(calibration["rows"], float(level))
            model_error = c * model_scale(scm, str(target), estimate, [*interventions, *(reference or {})])
        half = NormalDist().inv_cdf(0.5 + level / 2) * sd + model_error
        low, high = estimate[j] - half, estimate[j] + half
    else:
        low = high = float("nan")
    return Effect(target=str(target), intervention=_describe(interventions), reference=_describe(reference),
                  estimate=float(estimate[j]), low=float(low), high=float(high), level=float(level), n=int(n),
                  method="context rows" if used == "context" else "noise draws", replicates=reps,
                  resampling_sd=sd, model_error=float(model_error), calibrated=calibration is not None)
