"""Per node, the slope of abducted noise on true noise (1 = no shrinkage) and the noise RMSE / node spread.

    python experiments/noise_slopes.py [--scms 2] [--weights FOLDER] [--by-parents]

P_IN LIN d = 10 SCMs on the validation seed, 400 context + 400 query rows, nodes with parents; one line per SCM
and abduction (encoder head, decoder), each node as ``slope/rmse/|mean error|`` (the last two over the spread).
With ``--by-parents``: instead, per abduction, the median slope and mean rmse over nodes grouped by their number
of parents (1, 2-3, 4+), pooled over the SCMs.
"""

from __future__ import annotations

import argparse

import networkx as nx
import numpy as np

import condfip
from condfip.metrics import nodes_with_parents, parent_group
from condfip.simulate import get_prior, simulate
from condfip.train import VALIDATION_SEED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scms", type=int, default=2)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--by-parents", action="store_true")
    args = parser.parse_args()
    pooled = {(a, g): [] for a in ("encoder", "decoder") for g in ("1", "2-3", "4+")}
    model = condfip.load_pretrained(args.weights)
    for k in range(args.scms):
        ds = simulate(get_prior("paper-in"), nodes=10, samples=800, seed=VALIDATION_SEED, index=k, mechanism="linear")
        context, query, truth = ds.data.iloc[:400], ds.data.iloc[400:], ds.noise.iloc[400:].to_numpy()
        adj = nx.to_numpy_array(ds.scm.graph, nodelist=list(ds.data.columns)) != 0
        scored, parents = nodes_with_parents(adj), adj.sum(0)
        spread = ds.data.to_numpy().std(0)
        for abduction in ("encoder", "decoder"):
            estimate = model.infer(context, ds.scm.graph, abduction=abduction).noise(query).to_numpy()
            error = estimate - truth
            cells = []
            for i in np.nonzero(scored)[0]:
                slope = np.polyfit(truth[:, i], estimate[:, i], 1)[0]
                rmse = np.sqrt(np.mean(error[:, i] ** 2)) / spread[i]
                cells.append(f"{slope:.2f}/{rmse:.3f}/{abs(error[:, i].mean()) / spread[i]:.3f}")
                group = parent_group(parents[i])
                pooled[abduction, group].append((slope, rmse))
            if not args.by_parents:
                print(k, abduction, " ".join(cells))
    if args.by_parents:
        for (abduction, group), values in pooled.items():
            if values:
                slopes, rmses = np.array(values).T
                print(f"{abduction} {group:>3} parents: {len(values):3d} nodes, median slope {np.median(slopes):.2f},"
                      f" mean rmse / spread {rmses.mean():.3f}")


if __name__ == "__main__":
    main()
