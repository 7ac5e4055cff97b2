"""How often does ``effect``'s interval contain the true effect? Coverage on simulated SCMs.

For each of ``--scms`` simulated datasets (paper-in prior, LIN and RFF mechanisms alternating, d nodes, n context
rows): pick an intervened node X that has descendants and a descendant Y at random, estimate
E[Y | do(X=+1)] - E[Y | do(X=-1)] (data are standardised, so +-1 lies inside the range) with
``scm.effect(..., bootstrap=B)`` from the zero-shot SCM, and compute the true effect from the simulator's
ground-truth SCM on 20,000 common noise rows. Prints and writes (``--out``, JSON) the share of intervals that
contain the truth, overall and per mechanism, with its binomial standard error, and the median interval width
and absolute error.

    python scripts/effect_coverage.py --scms 200 --workers 2 --out effect-coverage.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor

import networkx as nx
import numpy as np

TRUTH_ROWS = 20_000


def one(args: tuple[int, int, int, int, int, str | None]) -> dict:
    index, d, n, bootstrap, seed, weights = args
    import torch

    torch.set_num_threads(1)
    import condfip
    from condfip.effects import _means
    from condfip.simulate import PRESETS, simulate

    mechanism = ("linear", "rff")[index % 2]
    data = simulate(PRESETS["paper-in"], nodes=d, samples=n, seed=seed, index=index, mechanism=mechanism)
    graph = data.scm.graph
    rng = np.random.default_rng([seed, index])
    sources = [v for v in graph.nodes if nx.descendants(graph, v)]
    if not sources:
        return {"index": index, "mechanism": mechanism, "skipped": "no edges"}
    x = str(rng.choice(sources))
    y = str(rng.choice(sorted(nx.descendants(graph, x))))
    truth_eps = data.scm.draw_noise_array(TRUTH_ROWS, np.random.default_rng([seed, index, 1]))
    truth = float(_means(data.scm, {x: 1.0}, {x: -1.0}, truth_eps)[data.scm.columns.index(y)])
    scm = condfip.load_pretrained(weights).infer(data.data, graph)
    start = time.perf_counter()
    effect = scm.effect(y, {x: 1.0}, {x: -1.0}, n=1000, bootstrap=bootstrap, seed=index)
    return {"index": index, "mechanism": mechanism, "x": x, "y": y, "truth": truth, "estimate": effect.estimate,
            "low": effect.low, "high": effect.high, "covered": bool(effect.low <= truth <= effect.high),
            "seconds": time.perf_counter() - start}


def summary(rows: list[dict]) -> dict:
    out = {}
    for name, part in (("all", rows), *((m, [r for r in rows if r["mechanism"] == m]) for m in ("linear", "rff"))):
        part = [r for r in part if "covered" in r]
        if not part:
            continue
        share = float(np.mean([r["covered"] for r in part]))
        out[name] = {"scms": len(part), "coverage": share,
                     "standard_error": math.sqrt(share * (1 - share) / len(part)),
                     "median_width": float(np.median([r["high"] - r["low"] for r in part])),
                     "median_abs_error": float(np.median([abs(r["estimate"] - r["truth"]) for r in part])),
                     "median_seconds": float(np.median([r["seconds"] for r in part]))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scms", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--bootstrap", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    jobs = [(k, args.nodes, args.rows, args.bootstrap, args.seed, args.weights) for k in range(args.scms)]
    start = time.perf_counter()
    command = "python scripts/effect_coverage.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out")
    rows: list[dict] = []
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for row in pool.map(one, jobs):  # in order; the file is rewritten after each SCM, so a cut run counts
            rows.append(row)
            result = {"command": command, "level": 0.95, "seconds": time.perf_counter() - start,
                      "finished": len(rows), "requested": args.scms, "summary": summary(rows), "rows": rows}
            if args.out:
                from condfip.atomic import atomic_write_text

                atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
