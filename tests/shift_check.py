"""The intervention-shift check shared by tests/test_inference.py and tools/intervention_shift.py: on 3 fixed
P_IN linear d = 10 SCMs (400 context rows), do(target = context mean + 3 context SDs) on the node with the most
children, and each child's mean shift predicted by the model's SCM against the true SCM's (same noise)."""

from __future__ import annotations

import numpy as np

from condfip.simulate import get_prior, simulate

SEED = 424_243  # neither the benchmark's nor the validation suite's seed


def child_shifts(model, rows: int = 2000, **infer_options) -> list[tuple[int, str, str, float, float]]:
    """(SCM index, target, child, predicted shift of the child's mean, true shift) for every child;
    ``infer_options`` go to ``model.infer``."""
    out = []
    for k in range(3):
        ds = simulate(get_prior("paper-in"), nodes=10, samples=400, seed=SEED, index=k, mechanism="linear")
        graph, context = ds.scm.graph, ds.data
        target = max(sorted(graph.nodes), key=graph.out_degree)
        value = float(context[target].mean() + 3 * context[target].std(ddof=1))
        scm = model.infer(context, graph, **infer_options)
        noise = ds.scm.draw_noise_array(rows, np.random.default_rng(k))
        true_obs, true_do = ds.scm.sample(noise=noise), ds.scm.do({target: value}).sample(noise=noise)
        ours_obs, ours_do = scm.sample(rows, seed=k), scm.do({target: value}).sample(rows, seed=k)
        for child in sorted(graph.successors(target)):
            out.append((k, target, child, float(ours_do[child].mean() - ours_obs[child].mean()),
                        float(true_do[child].mean() - true_obs[child].mean())))
    return out
