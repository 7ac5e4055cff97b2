"""Where the seconds of one bench dataset go, for the default ``condfip`` (``model.infer`` defaults), and what
fitting the kernel regressions two nodes at a time saves, in one run on the same datasets.

    python experiments/answer_timing.py [--datasets 2] [--d 20] [--n 400]

Per bench dataset (``condfip.bench.suites.make_problem``: P_IN and P_OUT x RFF and LIN): seconds of ``infer``,
of the kernel fit with ``workers=1`` and with ``workers=2`` (the default: ``torch.get_num_threads()``, 2 here),
and of the four answers of the paper's protocol as ``condfip bench`` asks them (the noise answer then reuses
the kernel fit already made). Torch's default threads; run it on an idle machine.
"""

import argparse
import time
import warnings

import numpy as np

import condfip
from condfip.bench.suites import make_problem
from condfip.bench.tasks import PAPER_TASKS, answer
from condfip.kernel_mechanisms import KernelMechanisms


def dataset_seconds(model, problem) -> list[float]:
    """infer, kernel fit with workers=1, the SCM's own kernel fit, the four answers: seconds."""
    start = time.perf_counter()
    scm = model.infer(problem.context, problem.graph)
    out = [time.perf_counter() - start]
    x, adj = (problem.context.to_numpy() - scm.mean) / scm.std, scm.adj[0].numpy()
    start = time.perf_counter()
    one = KernelMechanisms(x, adj, workers=1)
    out.append(time.perf_counter() - start)
    start = time.perf_counter()
    own = scm.kernel  # workers = torch's threads
    out.append(time.perf_counter() - start)
    for i, fit in own.fits.items():  # the same regressions whatever the workers
        assert np.array_equal(fit.trend, one.fits[i].trend), "the fit depends on the workers"
    for task in PAPER_TASKS:
        start = time.perf_counter()
        answer(task, scm, problem)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = condfip.load_pretrained()
    columns = ("infer", "kernel w=1", "kernel w=2", *PAPER_TASKS, "total (w=2)")
    print("| dataset | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    totals = []
    for mechanism in ("rff", "linear"):
        for preset in ("paper-in", "paper-out"):
            for k in range(args.datasets):
                problem = make_problem(preset, mechanism, args.d, args.n, k)
                cells = dataset_seconds(model, problem)
                total = cells[0] + sum(cells[2:])
                totals.append(total)
                cells.append(total)
                print(f"| {preset} {mechanism} #{k} | " + " | ".join(f"{v:.3f}" for v in cells) + " |", flush=True)
    print(f"\nmean total per dataset (fit + four answers, workers=2): {np.mean(totals):.3f} s")


if __name__ == "__main__":
    main()
