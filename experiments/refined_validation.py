"""Noise RMSE of condfip, the condfip+ols hybrid and least squares on the validation seed (never the benchmark's).

    python experiments/refined_validation.py [--scms 3] [--weights FOLDER]

Per P_IN cell (LIN and RFF, d = 10 and 20; 400 context + 400 query rows, nodes with parents scored), the mean
over SCMs of: ``cf`` (condfip, default abduction), ``dec`` (condfip, decoder abduction), ``hyb`` and ``hybdec``
(``infer(..., least_squares=True)`` with those two abductions), ``ols`` (least squares on the true parents).
"""

from __future__ import annotations

import argparse

import networkx as nx
import numpy as np

import condfip
from condfip.baselines import OLSParentsSCM
from condfip.metrics import nodes_with_parents, rmse_per_sample
from condfip.simulate import get_prior, simulate
from condfip.train import VALIDATION_SEED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scms", type=int, default=3)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    model = condfip.load_pretrained(args.weights)
    for mechanism in ("linear", "rff"):
        for d in (10, 20):
            scores: dict[str, list[float]] = {"cf": [], "hyb": [], "ols": [], "hybdec": [], "dec": []}
            for k in range(args.scms):
                ds = simulate(get_prior("paper-in"), nodes=d, samples=800, seed=VALIDATION_SEED, index=k,
                              mechanism=mechanism)
                context, query = ds.data.iloc[:400], ds.data.iloc[400:]
                truth = ds.noise.iloc[400:].to_numpy()
                scored = nodes_with_parents(nx.to_numpy_array(ds.scm.graph, nodelist=list(ds.data.columns)) != 0)
                graph = ds.scm.graph
                answers = {
                    "cf": model.infer(context, graph),
                    "hyb": model.infer(context, graph, least_squares=True),
                    "ols": OLSParentsSCM.fit(context, graph),
                    "hybdec": model.infer(context, graph, least_squares=True, abduction="decoder"),
                    "dec": model.infer(context, graph, abduction="decoder"),
                }
                for name, scm in answers.items():
                    scores[name].append(rmse_per_sample(truth, scm.noise(query), scored))
            print(mechanism, d, {name: round(float(np.mean(v)), 4) for name, v in scores.items()})


if __name__ == "__main__":
    main()
