"""Compare two training runs step by step on the same batches.

    python experiments/paired_losses.py runs/grow5 runs/heads8 [--window 100]

A run's batches are a function of its config's data settings and its seed (``condfip.train``), so two runs with
the same seed and data settings (prior, context sizes, batch size) but another model or optimiser setting see
identical datasets at every step: their per-step losses (``losses.jsonl``) pair up, and the ratio of their
means per window of steps is a low-noise A/B test long before the validation suite can tell them apart.
The last line given for a step wins (a resumed run rewrites the steps after its checkpoint).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from condfip.pretrained import read_checkpoint

DATA_SETTINGS = ("seed", "prior", "batch_size", "chunks", "context_sizes", "context_weights", "query_rows",
                 "encoder_steps")


def losses(run: Path) -> dict[int, float]:
    per_step = {}
    with open(run / "losses.jsonl") as lines:
        for line in lines:
            record = json.loads(line)
            per_step[record["step"]] = record["loss"]
    return per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()
    configs = [read_checkpoint(run / "checkpoint.pt")["config"] for run in (args.a, args.b)]
    differ = [k for k in DATA_SETTINGS if configs[0].get(k) != configs[1].get(k)]
    if differ:
        raise SystemExit(f"the runs see different batches ({', '.join(differ)} differ): their losses do not pair")
    a, b = losses(args.a), losses(args.b)
    steps = sorted(set(a) & set(b))
    if not steps:
        raise SystemExit("the two runs share no steps")
    print(f"{'steps':>12} {args.a.name:>10} {args.b.name:>10} {'b/a means':>10} {'b/a median':>11}")
    for start in range(0, steps[-1], args.window):
        window = [s for s in steps if start < s <= start + args.window]
        if window:
            x, y = np.array([a[s] for s in window]), np.array([b[s] for s in window])
            print(f"{start + 1:>5}-{start + args.window:<6} {x.mean():10.4f} {y.mean():10.4f} {y.mean() / x.mean():10.3f} "
                  f"{np.median(y / x):11.3f}")


if __name__ == "__main__":
    main()
