"""The figures the README's results narrative quotes, computed from a benchmark run's results.json.

    python scripts/results_summary.py docs/results/full

Prints: the target cell (P_IN, d = 20, n = 400) noise means; per task and mechanism the condfip / DoWhy,
condfip+ols / DoWhy and condfip+ols / condfip ratios of cell means (median, min, max over the cells where both
ran, as in the tables' last column); the Sachs MMD² means; wall time per dataset (range of cell means) and the
same pairs' ratios of it (and the cells where the first is slower); and the scale rows at d = 100.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from condfip.bench.report import dataset_seconds, mean_se
from condfip.bench.tasks import TASKS

TARGET_CELL = "paper-in/{mechanism}/d20/n400"
RATIOS = (("condfip", "dowhy"), ("condfip+ols", "dowhy"), ("condfip+ols", "condfip"))


def cell_means(records: list[dict], task: str) -> dict[tuple[str, str], float]:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        if r.get("part") == "synthetic" and r.get("task") == task and r.get("status") == "ok":
            groups[(r["cell"], r["method"])].append(r["value"])
    return {key: mean_se(values)[0] for key, values in groups.items()}


def ratio_summary(means: dict[tuple[str, str], float], mechanism: str, top: str = "condfip",
                  bottom: str = "dowhy") -> str:
    ratios = [means[(cell, top)] / means[(cell, bottom)] for cell, method in means
              if method == bottom and f"/{mechanism}/" in cell and (cell, top) in means
              and means[(cell, bottom)] > 0]
    if not ratios:
        return "no cells with both methods"
    return f"median {np.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} cells)"


def mean_seconds_per_dataset(records: list[dict]) -> dict[tuple[str, str], float]:
    """(cell, method) -> mean wall time per dataset (fit + the four answers)."""
    per_dataset: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (cell, method, _), seconds in dataset_seconds(records).items():
        per_dataset[(cell, method)].append(seconds)
    return {key: float(np.mean(values)) for key, values in per_dataset.items()}


def time_ratios(seconds: dict[tuple[str, str], float], top: str, bottom: str) -> dict[str, float]:
    """Per cell where both ran: top's mean wall time per dataset over bottom's."""
    return {cell: seconds[(cell, top)] / s for (cell, method), s in seconds.items()
            if method == bottom and (cell, top) in seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    records = json.loads((args.run_dir / "results.json").read_text())
    noise = cell_means(records, "noise")
    for mechanism in ("linear", "rff"):
        cell = TARGET_CELL.format(mechanism=mechanism)
        shown = {m: round(v, 3) for (c, m), v in sorted(noise.items()) if c == cell}
        print(f"noise {cell}: {shown}")
    for task in TASKS:
        means = cell_means(records, task)
        for mechanism in ("linear", "rff"):
            for top, bottom in RATIOS:
                print(f"{task:>14} {mechanism:>6} {top}/{bottom}: {ratio_summary(means, mechanism, top, bottom)}")
    sachs = defaultdict(list)
    for r in records:
        if r.get("part") == "sachs" and r.get("status") == "ok":
            sachs[r["method"]].append(r["value"])
    for method, values in sachs.items():
        mean, se = mean_se(values)
        print(f"sachs MMD² {method}: {mean:.4f} (se {se:.4f}, {len(values)} splits)")
    seconds = mean_seconds_per_dataset(records)
    for name in ("condfip", "condfip+ols", "dowhy"):
        per_cell = [s for (_, method), s in seconds.items() if method == name]
        if per_cell:
            print(f"time per dataset {name}: {min(per_cell):.2f}-{max(per_cell):.2f} s (cell means)")
    for top, bottom in RATIOS:
        ratios = time_ratios(seconds, top, bottom)
        if ratios:
            slower = sorted(cell for cell, ratio in ratios.items() if ratio > 1)
            named = f": {', '.join(slower)}" if 0 < len(slower) <= 8 else ""
            print(f"time per dataset {top}/{bottom}: {min(ratios.values()):.2f}-{max(ratios.values()):.2f} "
                  f"over {len(ratios)} cells; above 1 in {len(slower)}{named}")
    for r in sorted((r for r in records if r.get("part") == "scale" and r.get("d") == 100),
                    key=lambda r: r["n_context"]):
        print(f"scale d=100 n={r['n_context']}: {r['seconds']:.1f} s, peak {r['peak_rss_mb'] / 1024:.1f} GiB, "
              f"context used {r.get('context_used')}")


if __name__ == "__main__":
    main()
