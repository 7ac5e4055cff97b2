"""The four tasks of the paper's protocol, asked of any SCM through the one interface, and their scores.

Metric: ``condfip.metrics.rmse_per_sample`` over the nodes that have parents (the intervened node excluded),
in the data's standardised units; beside it, the mean over those nodes of the per-node RMSE divided by the
node's noise scale (std of the true noise on the query rows), ``value_scaled``.

- ``noise``: abducted noise of the query rows vs the true noise.
- ``sample``: the TRUE query noise pushed through the method's fixed point vs the query rows.
- ``intervention``: the same under do(target = value) vs the true SCM under the same do and noise.
- ``counterfactual``: the method abducts from the factual query rows and replays under the do; same truth.
- ``extrapolation`` (not in the paper): do(target = v) for v 2 and 4 context SDs beyond the target's context
  range, the true query noise pushed through; scored on the target's descendants only, over both values' rows.

Where true noise is pushed through, every method is handed the true root VALUES, in its own convention, for
the roots of its own graph (the true graph's, unless it was fitted on an inferred one): ``noise_for``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from condfip.bench.suites import Problem
from condfip.errors import ExtrapolationWarning
from condfip.metrics import rmse_per_sample
from condfip.scm import SCM

PAPER_TASKS = ("noise", "sample", "intervention", "counterfactual")
TASKS = (*PAPER_TASKS, "extrapolation")


def noise_for(scm: SCM, problem: Problem) -> pd.DataFrame:
    """The true query noise, with the true root values handed to every method in its own convention: a root of
    the method's graph gets the query value minus the method's mechanism there, a constant (condfip and least
    squares: the context mean; the oracle: the truth's; DoWhy, ``roots_as_values``: none, a root's noise is its
    value). Each tool has its own convention for a root's noise; until 2026-12-07 only DoWhy's roots got their
    values, and a method whose root is its context mean was handed the simulator's noise, off by that mean's
    sampling error (about 0.05 SD at 400 rows), which every descendant inherited."""
    noise = problem.true_noise.copy()
    graph = scm.graph  # the method's own graph (an inferred graph's roots may differ from the truth's)
    roots = [c for c in problem.columns if graph.in_degree(c) == 0]
    if roots:
        at = np.array([problem.columns.index(c) for c in roots])
        constant = (0.0 if getattr(scm, "roots_as_values", False)
                    else scm.mechanism_nodes_array(problem.query.to_numpy(), at))
        noise[roots] = problem.query[roots].to_numpy() - constant
    return noise


def answer(task: str, scm: SCM, problem: Problem) -> pd.DataFrame:
    """The method's answer to ``task`` on the query rows."""
    if task == "noise":
        return scm.noise(problem.query)
    if task == "sample":
        return scm.sample(noise=noise_for(scm, problem))
    if task == "intervention":
        return scm.do({problem.target: problem.value}).sample(noise=noise_for(scm, problem))
    if task == "counterfactual":
        return scm.counterfactual(problem.query, {problem.target: problem.value})
    if task == "extrapolation":
        noise = noise_for(scm, problem)
        return pd.concat([scm.do({problem.target: v}).sample(noise=noise) for v in problem.extrapolation_values])
    raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")


def truth(task: str, problem: Problem) -> pd.DataFrame:
    if task == "extrapolation":
        return pd.concat(problem.truth_extrapolation)
    return {"noise": problem.true_noise, "sample": problem.query}.get(task, problem.truth_do)


def rmse_per_node(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """sqrt(mean over rows of the squared error), per node."""
    error = np.asarray(y, dtype=np.float64) - np.asarray(y_hat, dtype=np.float64)
    return np.sqrt(np.mean(error**2, axis=0))


def score(task: str, estimate: pd.DataFrame, problem: Problem) -> tuple[float, float]:
    """(RMSE per sample over the scored nodes, mean per-node RMSE / noise scale over the same nodes)."""
    cols = problem.columns
    y, y_hat = truth(task, problem)[cols].to_numpy(), estimate[cols].to_numpy()
    if not np.isfinite(y_hat).all():
        raise FloatingPointError(f"the {task} answer has NaN or inf")
    nodes = (problem.descendants() if task == "extrapolation"
             else problem.scored(exclude_target=task in ("intervention", "counterfactual")))
    value = rmse_per_sample(y, y_hat, nodes)
    scale = np.maximum(problem.noise_scale, 1e-12)
    scaled = float(np.mean((rmse_per_node(y, y_hat) / scale)[nodes])) if nodes.any() else float("nan")
    return value, scaled


def run_tasks(scm: SCM, problem: Problem, tasks=TASKS) -> list[dict]:
    """Answer and score each task; per task: value, value_scaled, answer_seconds, status (ok/failed),
    error."""
    out = []
    for task in tasks:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():  # the tasks go beyond the context on purpose; the score says how it went
                warnings.simplefilter("ignore", ExtrapolationWarning)
                estimate = answer(task, scm, problem)
            seconds = time.perf_counter() - start
            value, scaled = score(task, estimate, problem)
            out.append({"task": task, "value": value, "value_scaled": scaled, "answer_seconds": seconds,
                        "status": "ok", "error": None})
        except Exception as err:  # noqa: BLE001 - a method's failure is a result, recorded as such
            out.append({"task": task, "value": None, "value_scaled": None,
                        "answer_seconds": time.perf_counter() - start, "status": "failed",
                        "error": f"{type(err).__name__}: {err}"[:500]})
    return out
