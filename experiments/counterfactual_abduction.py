"""Counterfactual RMSE with encoder-head vs decoder abduction, on SCMs of a seed that is neither the benchmark's
nor the validation suite's (the table in docs/training-log.md, "Counterfactual abduction").

    python experiments/counterfactual_abduction.py [--weights DIR] [--per-cell 6]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import condfip
from condfip.bench.suites import make_problem
from condfip.bench.tasks import score
from condfip.train import DESIGN_SEED


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default=None)
    parser.add_argument("--per-cell", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = condfip.load_pretrained(args.weights)
    means = {"encoder": [], "decoder": []}
    for preset in ("paper-in", "paper-out"):
        for mechanism in ("linear", "rff"):
            for d in (10, 20):
                scores = {"encoder": [], "decoder": []}
                for k in range(args.per_cell):
                    problem = make_problem(preset, mechanism, d, 400, k, seed=DESIGN_SEED)
                    for abduction, out in scores.items():
                        scm = model.infer(problem.context, problem.graph, abduction=abduction)
                        replayed = scm.do({problem.target: problem.value}).sample(noise=scm.noise(problem.query))
                        out.append(score("counterfactual", replayed, problem)[0])
                for abduction, out in scores.items():
                    means[abduction].append(np.mean(out))
                print(f"{preset}/{mechanism}/d{d}: encoder {np.mean(scores['encoder']):.3f} "
                      f"decoder {np.mean(scores['decoder']):.3f}", flush=True)
    print(f"mean: encoder {np.mean(means['encoder']):.3f} decoder {np.mean(means['decoder']):.3f}")


if __name__ == "__main__":
    main()
