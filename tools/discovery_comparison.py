"""Compare the discovery methods of ``condfip.discover`` on the simulator's prior, and calibrate confidence.

``compare``: per cell (preset x mechanism x d x context n) and SCM, every method searches once on the context
rows (no subsamples) in a child process with a time cap; the DAG it returns (after ``to_dag``) is scored
against the true graph (SHD, skeleton precision / recall, orientation accuracy) and handed to condfip, whose
noise and intervention RMSE on the query rows are set beside condfip's on the true graph (the bench's tasks
and scores, ``condfip.bench.tasks``).
``calibrate``: ``discover`` with its subsamples (the default method for each dataset's size unless
--methods); every edge's subsample stability and whether it is right (present and oriented as in the truth).
``fit-confidence``: the per-method maps from stability to confidence (``condfip.edge_confidence``) fitted on a
calibration file, written to the package's ``data/edge-confidence.json``.
``summary --calibration``: the edges binned by their confidence under the package's maps (and by stability), and
the share right of those with confidence >= 0.9; on a seed the maps were not fitted on, that is the check.

The SCMs come from ``condfip.bench.suites.make_problem`` with ``condfip.train.DESIGN_SEED`` (calibrate: or
--seed), neither the benchmark's seed nor the validation suite's.

Usage (one thread, as run for docs/discovery.md):
  OMP_NUM_THREADS=1 nice -n 15 python tools/discovery_comparison.py compare --out docs/discovery/comparison.json
  OMP_NUM_THREADS=1 python tools/discovery_comparison.py calibrate --methods pc,ges,boss,direct-lingam \
      --out docs/discovery/calibration.json
  python tools/discovery_comparison.py fit-confidence --calibration docs/discovery/calibration.json
  python tools/discovery_comparison.py summary --calibration docs/discovery/calibration-seed2.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np

from condfip.atomic import atomic_write_text
from condfip.bench.graph_scores import graph_scores
from condfip.bench.suites import make_problem
from condfip.bench.tasks import run_tasks
from condfip.discover import METHODS, default_method, discover
from condfip.train import DESIGN_SEED

MAIN_CELLS = [(p, m, d, 400, 3) for p in ("paper-in", "paper-out") for m in ("linear", "rff") for d in (10, 20)]
EXTRA_CELLS = ([(p, m, 50, 400, 1) for p in ("paper-in", "paper-out") for m in ("linear", "rff")]
               + [(p, m, d, 100, 1) for p in ("paper-in", "paper-out") for m in ("linear", "rff") for d in (10, 20)])
DOWNSTREAM_TASKS = ("noise", "intervention")


def _child(conn, context, method):
    start = time.perf_counter()
    try:
        graph = discover(context, method=method, resamples=0)
        conn.send(("ok", sorted(graph.edges()), time.perf_counter() - start))
    except Exception as err:  # noqa: BLE001 - a failed search is a result
        conn.send(("failed", f"{type(err).__name__}: {err}"[:300], time.perf_counter() - start))


def search_capped(context, method: str, cap: float):
    """(status, edges or error, seconds) of one search in a child process killed after ``cap`` seconds."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, context, method))
    proc.start()
    if parent.poll(cap):
        out = parent.recv()
        proc.join()
        return out
    proc.kill()
    proc.join()
    return "timeout", f"over {cap:.0f} s", cap


def downstream(model, problem, graph) -> dict:
    scm = model.infer(problem.context, graph)
    return {r["task"]: r["value"] for r in run_tasks(scm, problem, tasks=DOWNSTREAM_TASKS)}


def compare(args) -> None:
    import networkx as nx

    import condfip
    from condfip.discover import preload

    preload()  # the libraries load here, not inside each timed child
    model = condfip.load_pretrained()
    cells = MAIN_CELLS + ([] if args.no_extra else EXTRA_CELLS)
    records = json.loads(args.out.read_text()) if args.out.exists() else []  # resume: keep what is there
    done = {(r["cell"], r["index"], r["method"]) for r in records}
    for preset, mechanism, d, n, count in cells:
        for k in range(count):
            cell = f"{preset}/{mechanism}/d{d}/n{n}"
            todo = [m for m in args.methods if (cell, k, m) not in done]
            if not todo:
                continue
            problem = make_problem(preset, mechanism, d, n, k, seed=DESIGN_SEED)
            base = {"cell": cell, "preset": preset, "mechanism": mechanism, "d": d, "n": n, "index": k}
            if (cell, k, "true-graph") not in done:
                records.append({**base, "method": "true-graph", "status": "ok",
                                **downstream(model, problem, problem.graph)})
            for method in todo:
                status, payload, seconds = search_capped(problem.context, method, args.cap)
                rec = {**base, "method": method, "status": status, "seconds": seconds}
                if status == "ok":
                    graph = nx.DiGraph()
                    graph.add_nodes_from(problem.columns)
                    graph.add_edges_from(payload)
                    rec.update(graph_scores(problem.graph, graph), **downstream(model, problem, graph))
                else:
                    rec["error"] = payload
                records.append(rec)
                print(cell, k, method, status, f"{seconds:.1f}s", rec.get("shd"), flush=True)
            atomic_write_text(args.out, json.dumps(records, indent=0) + "\n")


def calibrate(args) -> None:
    records = json.loads(args.out.read_text()) if args.out.exists() else []  # resume: keep what is there
    done = {(r["cell"], r["index"], r["method"]) for r in records}
    # the first SCM of every cell, then the second of every cell, ...: a stopped run still covers every cell
    for k in range(max(count for *_, count in MAIN_CELLS)):
        for preset, mechanism, d, n, count in MAIN_CELLS:
            if k >= count:
                continue
            methods = [m for m in args.methods or [default_method(n, d)]
                       if (f"{preset}/{mechanism}/d{d}/n{n}", k, m) not in done]
            if not methods:
                continue
            problem = make_problem(preset, mechanism, d, n, k, seed=args.seed)
            true_edges = {(str(u), str(v)) for u, v in problem.graph.edges()}
            for method in methods:
                start = time.perf_counter()
                graph = discover(problem.context, method=method, resamples=args.resamples, seed=k)
                seconds = time.perf_counter() - start
                for u, v, attrs in graph.edges(data=True):
                    records.append({"cell": f"{preset}/{mechanism}/d{d}/n{n}", "mechanism": mechanism, "d": d,
                                    "index": k, "method": method, "stability": attrs["stability"],
                                    "right": (u, v) in true_edges, "present": (u, v) in true_edges
                                    or (v, u) in true_edges, "seconds": seconds})
                print(preset, mechanism, d, k, method, f"{seconds:.1f}s", flush=True)
            atomic_write_text(args.out, json.dumps(records, indent=0) + "\n")


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def summary(args) -> None:
    """Markdown tables from a comparison and a calibration file."""
    if args.comparison:
        records = json.loads(Path(args.comparison).read_text())
        groups: dict[tuple, list] = {}
        for r in records:
            groups.setdefault((f"{r['mechanism']}/d{r['d']}/n{r['n']}", r["method"]), []).append(r)
        print("| cells | method | SHD | precision | recall | orientation | s / fit | noise RMSE | "
              "interv. RMSE | failed/timeout |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for (cell, method), rs in sorted(groups.items()):
            ok = [r for r in rs if r["status"] == "ok"]
            fmt = lambda key, p=2, ok=ok: f"{_mean([r.get(key) for r in ok]):.{p}f}"
            print(f"| {cell} | {method} | {fmt('shd', 1) if method != 'true-graph' else '0'} | "
                  f"{fmt('precision') if method != 'true-graph' else '-'} | "
                  f"{fmt('recall') if method != 'true-graph' else '-'} | "
                  f"{fmt('orientation') if method != 'true-graph' else '-'} | "
                  f"{fmt('seconds') if method != 'true-graph' else '-'} | {fmt('noise', 3)} | "
                  f"{fmt('intervention', 3)} | {len(rs) - len(ok)}/{len(rs)} |")
    if args.calibration:
        from condfip.edge_confidence import confidence

        records = json.loads(Path(args.calibration).read_text())
        for r in records:
            r["confidence"] = confidence(r["method"], r["stability"])
        bins = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)]
        print("\n| method | mechanism | confidence | edges | right (present and oriented) | present |")
        print("|---|---|---|---|---|---|")
        keys = sorted({(r["method"], r["mechanism"]) for r in records}) + sorted({(r["method"], "all")
                                                                                   for r in records})
        for method, mechanism in keys:
            for lo, hi in bins:
                rs = [r for r in records if r["method"] == method and mechanism in ("all", r["mechanism"])
                      and lo <= r["confidence"] < hi]
                if rs:
                    print(f"| {method} | {mechanism} | [{lo:.1f}, {min(hi, 1.0):.1f}{')' if hi < 1 else ']'} | "
                          f"{len(rs)} | {np.mean([r['right'] for r in rs]):.0%} | "
                          f"{np.mean([r['present'] for r in rs]):.0%} |")
        print()
        for method in sorted({r["method"] for r in records}) + ["all", "default"]:
            rs = _members(records, method)
            print(confident_share(rs, method), "| by stability:", confident_share(rs, method, key="stability"))
        print("\nReliability (edges binned by confidence: mean confidence against the share right; Brier score of "
              "confidence and of stability as forecasts of right):")
        print("\n| method | confidence | edges | mean confidence | right | Brier (confidence) | Brier (stability) |")
        print("|---|---|---|---|---|---|---|")
        edges = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
        for method in sorted({r["method"] for r in records}) + ["default"]:
            rs = _members(records, method)
            brier = {key: np.mean([(r[key] - r["right"]) ** 2 for r in rs]) for key in ("confidence", "stability")}
            first = True
            for lo, hi in edges:
                b = [r for r in rs if lo <= r["confidence"] < hi]
                if b:
                    tail = f" {brier['confidence']:.3f} | {brier['stability']:.3f} |" if first else " | |"
                    first = False
                    print(f"| {method} | [{lo:.1f}, {min(hi, 1.0):.1f}{')' if hi < 1 else ']'} | {len(b)} | "
                          f"{np.mean([r['confidence'] for r in b]):.2f} | {np.mean([r['right'] for r in b]):.0%} |"
                          + tail)


def _members(records: list[dict], group: str) -> list[dict]:
    """A calibration file's edges of one method, of all methods ("all"), or of the method ``discover`` runs
    by default on each SCM's size ("default"; the calibration cells have n = 400)."""
    if group == "all":
        return records
    if group == "default":
        return [r for r in records if r["method"] == default_method(400, r["d"])]
    return [r for r in records if r["method"] == group]


def fit_confidence(args) -> None:
    from condfip.edge_confidence import MAP_FILE, fit_map

    records = json.loads(Path(args.calibration).read_text())
    methods = {m: fit_map(np.array([r["stability"] for r in records if r["method"] == m]),
                          np.array([r["right"] for r in records if r["method"] == m]))
               for m in sorted({r["method"] for r in records})}
    scms = len({(r["cell"], r["index"]) for r in records})
    out = {"what": "per discovery method, subsample stability -> share of edges that stable that were right "
                   "(present and oriented), isotonic, shrunk by one right and one wrong pseudo-edge per block",
           "command": f"python tools/discovery_comparison.py fit-confidence --calibration {args.calibration}",
           "calibration_scms": scms, "methods": methods}
    atomic_write_text(args.out or MAP_FILE, json.dumps(out, indent=1) + "\n")
    for m, table in methods.items():
        print(m, table["edges"], "edges:", list(zip(table["stability"], table["confidence"], strict=True)))


def confident_share(records: list[dict], label: str, threshold: float = 0.9, draws: int = 2000,
                    key: str = "confidence") -> str:
    """The share of edges with ``key`` (confidence or stability) >= ``threshold`` that are right, with its
    binomial SE (edges taken as independent) and the SE from resampling whole SCMs (edges of one SCM are not
    independent)."""
    confident = [r for r in records if r[key] >= threshold]
    if not confident:
        return f"{label}: no edge with {key} >= {threshold} ({len(records)} edges in all)"
    right = np.array([r["right"] for r in confident], dtype=float)
    share = right.mean()
    by_scm: dict[tuple, list] = {}
    for r in confident:
        by_scm.setdefault((r["cell"], r["index"]), []).append(r["right"])
    groups = list(by_scm.values())
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(draws):
        picked = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        shares.append(sum(map(sum, picked)) / sum(map(len, picked)))
    scms = len({(r["cell"], r["index"]) for r in records})
    return (f"{label}: {int(right.sum())} of {len(confident)} edges with {key} >= {threshold} are right "
            f"({share:.1%}; binomial SE {np.sqrt(share * (1 - share) / len(confident)):.1%}, SE resampling the "
            f"SCMs {np.std(shares):.1%}); {scms} SCMs, {len(records)} edges in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    c.add_argument("--cap", type=float, default=60.0, help="seconds per search")
    c.add_argument("--no-extra", action="store_true", help="only the d in {10, 20}, n = 400 cells")
    k = sub.add_parser("calibrate")
    k.add_argument("--out", type=Path, required=True)
    k.add_argument("--methods", type=lambda s: s.split(","), default=None)
    k.add_argument("--resamples", type=int, default=None)
    k.add_argument("--seed", type=int, default=DESIGN_SEED,
                   help="the SCMs' seed (default DESIGN_SEED; DESIGN_SEED + 1 confirmed the subsample choice)")
    f = sub.add_parser("fit-confidence")
    f.add_argument("--calibration", type=Path, required=True)
    f.add_argument("--out", type=Path, default=None, help="default: the package's data/edge-confidence.json")
    s = sub.add_parser("summary")
    s.add_argument("--comparison", type=Path)
    s.add_argument("--calibration", type=Path)
    args = parser.parse_args()
    if args.command == "calibrate":
        from condfip.discover import DEFAULT_RESAMPLES

        args.resamples = DEFAULT_RESAMPLES if args.resamples is None else args.resamples
    {"compare": compare, "calibrate": calibrate, "fit-confidence": fit_confidence,
     "summary": summary}[args.command](args)


if __name__ == "__main__":
    main()
