"""Time inference: a d-node, n-row dataset to a usable SCM (load excluded), and 1000 new samples (with the
default kernel mechanisms the first sample also fits them).

Usage: python tools/infer_timing.py [--nodes 20] [--rows 400] [--repeats 10] [--weights FOLDER]
       [--mechanisms kernel|network]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import condfip
from condfip.simulate import get_prior, simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--weights", default=None, help="a weights folder (default: the shipped weights)")
    parser.add_argument("--mechanisms", default="kernel", choices=("kernel", "network"))
    args = parser.parse_args()
    ds = simulate(get_prior("paper-in"), nodes=args.nodes, samples=args.rows, seed=99, mechanism="rff")
    model = condfip.load_pretrained(args.weights)
    infer, sample = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        scm = model.infer(ds.data, ds.scm.graph, mechanisms=args.mechanisms)
        infer.append(time.perf_counter() - start)
        start = time.perf_counter()
        scm.sample(1000, seed=0)
        sample.append(time.perf_counter() - start)
    print(f"d={args.nodes}, n={args.rows}, {args.mechanisms} mechanisms, torch threads {torch.get_num_threads()}: "
          f"infer median {statistics.median(infer) * 1000:.0f} ms, "
          f"sample(1000) median {statistics.median(sample) * 1000:.0f} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()
