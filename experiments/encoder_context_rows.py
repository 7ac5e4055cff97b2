"""Encoder-head noise RMSE against the number of rows the encoder sees (shipped weights or a checkpoint).

    python experiments/encoder_context_rows.py [--checkpoint runs/X/checkpoint.pt] [--per-cell 6]

P_IN, d = 20, LIN and RFF, design seed (neither the benchmark's nor the validation suite's). The last 50 rows of
each 800-row dataset are always among the rows seen and are the ones scored, so the columns differ only in how
much context the encoder attends over.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from condfip.metrics import nodes_with_parents, rmse_per_sample
from condfip.pretrained import build_network, checkpoint_network
from condfip.simulate import get_prior, simulate
from condfip.train import DESIGN_SEED

ROWS = (50, 100, 200, 400, 800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a training checkpoint (its EMA weights); default: shipped")
    parser.add_argument("--per-cell", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    network = checkpoint_network(args.checkpoint)[0] if args.checkpoint else build_network(None)[0]
    print("| mechanism | " + " | ".join(f"{m} rows" for m in ROWS) + " |")
    print("|---|" + "---|" * len(ROWS))
    for mechanism in ("linear", "rff"):
        scores: dict[int, list[float]] = {m: [] for m in ROWS}
        for k in range(args.per_cell):
            ds = simulate(get_prior("paper-in"), nodes=20, samples=800, seed=DESIGN_SEED, index=20_000 + k,
                          mechanism=mechanism)
            x, adj = ds.scm.batch.x.float(), ds.scm.batch.adj
            noise = ds.scm.batch.noise[0].cpu().numpy()
            scored = nodes_with_parents(adj[0].cpu().numpy())
            with torch.no_grad():
                for m in ROWS:
                    _, f_hat = network.encoder(x[:, 800 - m:], adj)
                    scores[m].append(rmse_per_sample(noise[750:], (x[:, 800 - m:] - f_hat)[0, -50:].numpy(), scored))
        print(f"| {mechanism} | " + " | ".join(f"{np.mean(scores[m]):.3f}" for m in ROWS) + " |")


if __name__ == "__main__":
    main()
