"""Time ``condfip.discover`` + ``infer`` at d nodes, n rows, for several subsample counts.

Usage: OMP_NUM_THREADS=1 nice -n 15 python tools/discover_timing.py [--nodes 20] [--rows 400]
       [--resamples 0,10,20,30] [--method NAME] [--repeats 2]
Prints one line per resample count: median wall seconds of discover and of discover + infer, and the 1-minute
load average (the machine is shared; a loaded machine makes every figure slower).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import condfip
from condfip.bench.suites import make_problem
from condfip.discover import default_method, discover, preload
from condfip.train import DESIGN_SEED


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--resamples", default="0,10,20,30")
    parser.add_argument("--method", default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    preload()
    model = condfip.load_pretrained()
    method = args.method or default_method(args.rows, args.nodes)
    for mechanism in ("linear", "rff"):
        problem = make_problem("paper-in", mechanism, args.nodes, args.rows, 0, seed=DESIGN_SEED)
        model.infer(problem.context, problem.graph)  # warm-up
        for resamples in (int(r) for r in args.resamples.split(",")):
            found, total = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                graph = discover(problem.context, method=method, resamples=resamples)
                middle = time.perf_counter()
                model.infer(problem.context, graph)
                found.append(middle - start)
                total.append(time.perf_counter() - start)
            print(f"{method} {mechanism} d={args.nodes} n={args.rows} resamples={resamples}: discover "
                  f"{statistics.median(found):.2f} s, discover + infer {statistics.median(total):.2f} s "
                  f"(load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)", flush=True)


if __name__ == "__main__":
    main()
