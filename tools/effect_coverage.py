"""How often does ``effect``'s interval contain the true effect? Measured on simulated SCMs, and the
calibration of its model-error term.

Each of ``--scms`` simulated datasets cycles through a mix of settings (LIN / RFF mechanisms, the paper-in and
paper-out priors, n = 100 and 400 context rows, d = 5, 10 and 20 nodes: 24 combinations). On each, pick an
intervened node X that has descendants and a descendant Y at random, and a question: with probability 1/3
``E[Y | do(X=a)] - E[Y]`` (no reference), else ``E[Y | do(X=a)] - E[Y | do(X=b)]``, with a and b uniform within
2 context SDs of X's mean (|a - b| >= 0.5 SD). Estimate it zero-shot (``effect_table``: the estimate and 50
context-bootstrap replicates, as ``scm.effect`` does by default) and compute the truth from the simulator's
ground-truth SCM on 20,000 common noise rows. Each row keeps the estimate, the truth, the replicates' SD and the
question's size (``condfip.effects.model_scale``), so any interval of the form
``estimate +- (z * SD + c * size)`` can be scored afterwards.

    python tools/effect_coverage.py run --scms 120 --seed 1 --out calibration.json     # resumable
    python tools/effect_coverage.py calibrate calibration.json                        # -> the package's file
    python tools/effect_coverage.py report held-out.json                              # coverage, both intervals

``run`` rewrites ``--out`` after each SCM and, started again with the same options, continues where it stopped.
Use a design seed for ``calibrate`` and another seed for ``report`` (split conformal: the calibrated interval's
coverage is only a guarantee on SCMs drawn like the calibration set's).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import networkx as nx
import numpy as np

TRUTH_ROWS = 20_000
BOOTSTRAP = 50
Z95 = 1.959963984540054


def setting(index: int) -> dict:
    return {"mechanism": ("linear", "rff")[index % 2], "prior": ("paper-in", "paper-out")[(index // 2) % 2],
            "rows": (100, 400)[(index // 4) % 2], "nodes": (5, 10, 20)[(index // 8) % 3]}


def one(index: int, seed: int, weights: str | None, mechanisms: str) -> dict:
    import torch

    torch.set_num_threads(1)
    import condfip
    from condfip.effects import _means, effect_table, model_scale
    from condfip.simulate import PRESETS, simulate

    s = setting(index)
    data = simulate(PRESETS[s["prior"]], nodes=s["nodes"], samples=s["rows"], seed=seed, index=index,
                    mechanism=s["mechanism"])
    graph = data.scm.graph
    rng = np.random.default_rng([seed, index])
    sources = [v for v in graph.nodes if nx.descendants(graph, v)]
    if not sources:
        return {"index": index, **s, "skipped": "no edges"}
    x = str(rng.choice(sources))
    y = str(rng.choice(sorted(nx.descendants(graph, x))))
    mean, sd = float(data.data[x].mean()), float(data.data[x].std())
    a = mean + sd * rng.uniform(-2, 2)
    reference = None
    if rng.random() >= 1 / 3:
        b = a
        while abs(a - b) < 0.5 * sd:
            b = mean + sd * rng.uniform(-2, 2)
        reference = {x: float(b)}
    truth_eps = data.scm.draw_noise_array(TRUTH_ROWS, np.random.default_rng([seed, index, 1]))
    truth = float(_means(data.scm, {x: a}, reference or {}, truth_eps)[data.scm.columns.index(y)])
    scm = condfip.load_pretrained(weights).infer(data.data, graph, mechanisms=mechanisms)
    start = time.perf_counter()
    estimate, replicates = effect_table(scm, {x: a}, reference, n=1000, bootstrap=BOOTSTRAP, seed=index,
                                        targets=[y])
    j = scm.columns.index(y)
    return {"index": index, **s, "x": x, "y": y, "a": a, "b": None if reference is None else reference[x],
            "truth": truth, "estimate": float(estimate[j]), "sd": float(replicates[:, 0].std(ddof=1)),
            "size": model_scale(scm, y, estimate, [x]), "seconds": time.perf_counter() - start}


def rescore(args) -> None:
    """Recompute each row's ``size`` with the current ``model_scale`` (the estimate again without the bootstrap,
    checked equal to the row's), keeping the previous value as ``size_before``: a changed size formula without
    rerunning the bootstrap."""
    import torch

    torch.set_num_threads(1)
    import condfip
    from condfip.atomic import atomic_write_text
    from condfip.effects import effect_table, model_scale
    from condfip.simulate import PRESETS, simulate

    data = json.loads(Path(args.rows).read_text())
    seed = int(data["command"].split("--seed ")[1].split()[0])
    model = condfip.load_pretrained(None)
    for r in data["rows"]:
        if "truth" not in r:
            continue
        sim = simulate(PRESETS[r["prior"]], nodes=r["nodes"], samples=r["rows"], seed=seed, index=r["index"],
                       mechanism=r["mechanism"])
        scm = model.infer(sim.data, sim.scm.graph, mechanisms=data.get("mechanisms", "network"))
        reference = None if r["b"] is None else {r["x"]: r["b"]}
        estimate, _ = effect_table(scm, {r["x"]: r["a"]}, reference, n=1000, bootstrap=0, seed=r["index"])
        if abs(estimate[scm.columns.index(r["y"])] - r["estimate"]) > 1e-9 * (1 + abs(r["estimate"])):
            raise SystemExit(f"row {r['index']}: the estimate changed; rerun `run` instead")
        r.setdefault("size_before", r["size"])
        r["size"] = model_scale(scm, r["y"], estimate, [r["x"]])
    atomic_write_text(args.rows, json.dumps(data, indent=1) + "\n")
    print(f"rescored {sum('truth' in r for r in data['rows'])} rows of {args.rows}")


def triples(rows: list[dict]) -> list[list[float]]:
    """[|estimate - truth|, SD of the replicates, size] per finished SCM: what the calibration keeps."""
    return [[abs(r["estimate"] - r["truth"]), r["sd"], r["size"]] for r in rows if "truth" in r]


def coverage(rows: list[dict], c: float, z: float = Z95) -> dict:
    rows = [r for r in rows if "truth" in r]
    out = {}
    groups = {"all": rows}
    for key in ("mechanism", "prior", "rows", "nodes"):
        for value in sorted({r[key] for r in rows}):
            groups[f"{key}={value}"] = [r for r in rows if r[key] == value]
    for name, part in groups.items():
        err = np.array([abs(r["estimate"] - r["truth"]) for r in part])
        boot = np.array([z * r["sd"] for r in part])
        full = boot + c * np.array([r["size"] for r in part])
        b, f = float(np.mean(err <= boot)), float(np.mean(err <= full))
        out[name] = {"scms": len(part), "coverage_resampling_only": b,
                     "se_resampling_only": math.sqrt(b * (1 - b) / len(part)),
                     "coverage": f, "se": math.sqrt(f * (1 - f) / len(part)), "median_half_width": float(np.median(full)),
                     "median_abs_error": float(np.median(err)),
                     "median_abs_truth": float(np.median([abs(r["truth"]) for r in part]))}
    return out


def run(args) -> None:
    from condfip.atomic import atomic_write_text

    command = (f"python tools/effect_coverage.py run --scms {args.scms} --seed {args.seed}"
               + (f" --weights {args.weights}" if args.weights else "")
               + f" --mechanisms {args.mechanisms}")
    rows: list[dict] = []
    path = Path(args.out)
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("command") == command:
            rows = old["rows"]
            print(f"resuming after {len(rows)} SCMs")
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for index in range(len(rows), args.scms):
        rows.append(one(index, args.seed, args.weights, args.mechanisms))
        atomic_write_text(path, json.dumps({"command": command, "mechanisms": args.mechanisms, "bootstrap": BOOTSTRAP,
                                            "finished": len(rows),
                                            "requested": args.scms, "rows": rows}, indent=1) + "\n")
        print(f"{len(rows)}/{args.scms} {time.perf_counter() - start:.0f} s", flush=True)


def calibrate(args) -> None:
    from condfip.atomic import atomic_write_text
    from condfip.effects import conformal_quantile
    from condfip.pretrained import WEIGHTS_DIR, WEIGHTS_FILE, sha256

    data = json.loads(Path(args.rows).read_text())
    rows = triples(data["rows"])
    out = {"what": "model-error calibration of effect's interval (condfip.effects.conformal_quantile): "
                   "[|estimate - truth|, SD of the bootstrap replicates, size] on simulated SCMs",
           "command": data["command"], "weights_sha256": sha256(WEIGHTS_DIR / WEIGHTS_FILE),
           "mechanisms": data.get("mechanisms", "network"),  # rows files without the key predate kernel ones
           "rows": [[round(float(v), 6) for v in row] for row in rows]}
    atomic_write_text(args.out, json.dumps(out) + "\n")
    print(f"{len(rows)} SCMs; c(0.95) = {conformal_quantile(rows, 0.95):.4f} -> {args.out}")


def report(args) -> None:
    from condfip.atomic import atomic_write_text
    from condfip.effects import conformal_quantile, load_calibration

    data = json.loads(Path(args.rows).read_text())
    calibration = load_calibration()
    c = conformal_quantile(calibration["rows"], 0.95)
    result = {"command": data["command"], "calibration": calibration["command"], "c95": c,
              "summary": coverage(data["rows"], c)}
    print(json.dumps(result, indent=1))
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("run")
    p.add_argument("--scms", type=int, default=120)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--weights", default=None)
    p.add_argument("--mechanisms", default="kernel", choices=("kernel", "network"))
    p.add_argument("--out", required=True)
    p = sub.add_parser("calibrate")
    p.add_argument("rows")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/condfip/weights/effect.json"))
    p = sub.add_parser("rescore")
    p.add_argument("rows")
    p = sub.add_parser("report")
    p.add_argument("rows")
    p.add_argument("--out", default=None)
    args = parser.parse_args()
    {"run": run, "rescore": rescore, "calibrate": calibrate, "report": report}[args.what](args)


if __name__ == "__main__":
    main()
