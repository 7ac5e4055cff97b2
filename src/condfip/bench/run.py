"""``condfip bench``: the paper's protocol, every method on the same rows in the same run, one command.

Writes into ``--out``: ``results.json`` (a list of records, rewritten atomically after every dataset, so a
killed run resumes where it stopped: records already present are skipped), ``results.md``, ``meta.json`` and
PNG plots. Record fields: ``part`` (synthetic / sachs / scale), ``method``, ``task``, ``cell``, ``d``,
``n_context``, ``index`` (dataset or split), ``value`` (None unless ok), ``seconds`` (fit + this answer),
``status`` (ok / failed / timeout), ``error``, ``load1`` (1-minute load average when the method started), and
per part: ``value_scaled``, ``fit_seconds``, ``answer_seconds``, ``dataset_seconds`` (fit + all answers),
``target``/``value_do`` (the intervention), ``weights_sha256`` (condfip methods).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from condfip.atomic import atomic_write_text
from condfip.baselines import FitTimeout
from condfip.bench.inferred import GRAPHS, discovery_record, graph_from_record
from condfip.bench.methods import ALL_METHODS, METHODS, Methods
from condfip.bench.report import render
from condfip.bench.scale import FULL_GRID, QUICK_GRID, measure
from condfip.bench.suites import (
    BENCH_SEED,
    QUERY_ROWS,
    Cell,
    full_cells,
    make_problem,
    quick_cells,
    select_cells,
)
from condfip.bench.tasks import PAPER_TASKS, TASKS, run_tasks

PARTS = ("synthetic", "sachs", "scale")
SYNTH_METHODS_ORDER = ("condfip", "condfip-network", "condfip-decoder", "condfip-encoder", "dowhy",
                       "ols-parents", "zero-noise", "oracle")


@dataclass
class BenchConfig:
    out: Path
    quick: bool = False
    methods: tuple[str, ...] = METHODS
    cells: list[str] | None = None  # glob patterns over cell names (synthetic cells, "sachs", "scale/d*/n*")
    parts: tuple[str, ...] = PARTS
    dowhy_timeout: float | None = -1.0  # -1: the mode's default (quick 90 s, full 600 s); None: in process
    dowhy_max_d: int = 20
    sachs_dir: str | None = None
    sachs_splits: int | None = None  # None: quick 3, full 10
    weights: str | None = None
    command: str | None = None
    suite: list[Cell] | None = None  # overrides the mode's cells (tests)
    scale_grid: list[tuple[int, int]] | None = None  # overrides the mode's scale grid (tests)
    query_rows: int = QUERY_ROWS
    retry: bool = False  # recompute records whose status is failed or timeout
    plots: bool = True
    quiet: bool = False
    notes: list[str] = field(default_factory=list)
    graph: str = "true"  # "inferred": also every method on a discovered graph (condfip.bench.inferred)
    discovery_method: str | None = None  # None: condfip.discover's default

    def __post_init__(self):
        self.out = Path(self.out)
        if self.graph not in GRAPHS:
            raise ValueError(f"unknown graph {self.graph!r}; choose from {GRAPHS}")
        if self.discovery_method is not None:
            from condfip.discover import METHODS as DISCOVERY_METHODS

            if self.discovery_method not in DISCOVERY_METHODS:
                raise ValueError(f"unknown discovery method {self.discovery_method!r}; choose from "
                                 f"{DISCOVERY_METHODS}")
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {ALL_METHODS}")
        bad = [p for p in self.parts if p not in PARTS]
        if bad:
            raise ValueError(f"unknown parts {bad}; choose from {PARTS}")
        if self.dowhy_timeout is not None and self.dowhy_timeout < 0:
            self.dowhy_timeout = 90.0 if self.quick else 600.0
        if self.sachs_splits is None:
            self.sachs_splits = 3 if self.quick else 10


# ---- progress and files -----------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.done, self.quiet = max(total, 1), 0, quiet
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def show(self, label: str, advance: bool = False) -> None:
        self.done += int(advance)
        if self.quiet:
            return
        filled = int(20 * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        line = (f"[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total} "
                f"{int(elapsed // 60)}m{int(elapsed % 60):02d}s  {label}")
        if self.tty:
            sys.stderr.write("\r" + line[:150].ljust(150))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_records(records: list[dict], path: Path) -> None:
    atomic_write_text(path, json.dumps([{k: _clean(v) for k, v in r.items()} for r in records], indent=0) + "\n")


def load_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
    except ValueError:
        raise ValueError(f"{path} is not valid JSON; move it away to start afresh") from None
    if not isinstance(records, list):
        raise TypeError(f"{path} must hold a list of records")
    return records


def _key(r: dict) -> tuple:
    return (r.get("part"), r["method"], r["task"], r["cell"], r["index"])


# ---- meta -------------------------------------------------------------------------------------------
def _git_commit() -> str:
    where = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=where, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False,
                               cwd=where, capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def _versions() -> str:
    out = [f"python {platform.python_version()}"]
    for pkg in ("condfip", "torch", "numpy", "dowhy", "scikit-learn"):
        try:
            out.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    return ", ".join(out)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# ---- the parts --------------------------------------------------------------------------------------
class Bench:
    def __init__(self, cfg: BenchConfig):
        self.cfg = cfg
        self.path = cfg.out / "results.json"
        self.records = load_records(self.path)
        self.methods = Methods(weights=cfg.weights, dowhy_timeout=cfg.dowhy_timeout)
        self.sha = self.methods.weights_sha256 if any(m.startswith("condfip") for m in cfg.methods) else None
        stale = [r for r in self.records
                 if r["method"].startswith("condfip") and self.sha
                 and r.get("weights_sha256") != self.sha]
        if stale:
            print(f"dropping {len(stale)} condfip records of other weights from {self.path}", file=sys.stderr)
            self.records = [r for r in self.records if r not in stale]
        self.done = {_key(r) for r in self.records if not (cfg.retry and r.get("status") != "ok")}
        self.resumed = len(self.records)

    def _store(self, new: list[dict]) -> None:
        keys = {_key(r) for r in new}
        self.records = [r for r in self.records if _key(r) not in keys] + new
        self.done |= keys
        save_records(self.records, self.path)

    def _common(self, method: str) -> dict:
        out = {"load1": _load()}
        if method.startswith("condfip"):
            out["weights_sha256"] = self.methods.weights_sha256
        return out

    # -- synthetic --
    def synthetic_cells(self) -> list[Cell]:
        cells = self.cfg.suite or (quick_cells() if self.cfg.quick else full_cells())
        return select_cells(cells, self.cfg.cells) if "synthetic" in self.cfg.parts else []

    def synthetic_methods(self, cell: Cell) -> list[str]:
        return [m for m in self.cfg.methods if not (m == "dowhy" and cell.d > self.cfg.dowhy_max_d)]

    def run_dataset(self, cell: Cell, k: int, progress: Progress) -> None:
        parts = ["synthetic"] + (["synthetic-inferred"] if self.cfg.graph == "inferred" else [])
        todo = [(part, m) for part in parts for m in self.synthetic_methods(cell)
                if not (part == "synthetic-inferred" and m == "oracle")
                and any((part, m, t, cell.name, k) not in self.done for t in TASKS)]
        if not todo:
            return
        problem = make_problem(cell.preset, cell.mechanism, cell.d, cell.n_context, k,
                               query_rows=self.cfg.query_rows)
        graphs = {"synthetic": problem.graph}
        if "synthetic-inferred" in parts:
            graphs["synthetic-inferred"] = self.inferred_graph(cell, k, problem, progress)
        new = []
        for part, m in todo:
            progress.show(f"{cell.name} #{k} {m}{' (inferred graph)' if part != 'synthetic' else ''}")
            base = {"part": part, "method": m, "cell": cell.name, "preset": cell.preset,
                    "mechanism": cell.mechanism, "d": cell.d, "n_context": cell.n_context,
                    "n_query": len(problem.query), "index": k, "seed": BENCH_SEED, "target": problem.target,
                    "value_do": problem.value,
                    **self._common(m)}
            start = time.perf_counter()
            try:
                scm, fit_s = self.methods.fit(m, problem.context, graphs[part], truth=problem.truth, seed=k)
            except FitTimeout as err:
                results = [{"task": t, "status": "timeout", "error": str(err)} for t in TASKS]
                fit_s = err.seconds
            except Exception as err:  # noqa: BLE001 - a failed fit is a result
                results = [{"task": t, "status": "failed", "error": f"{type(err).__name__}: {err}"[:500]}
                           for t in TASKS]
                fit_s = time.perf_counter() - start
            else:
                results = run_tasks(scm, problem)
            answers = sum(r.get("answer_seconds", 0.0) for r in results if r["task"] in PAPER_TASKS)
            for r in results:
                rec = {**base, "value": None, "value_scaled": None, **r, "fit_seconds": fit_s}
                ok = rec["status"] == "ok"
                rec["seconds"] = fit_s + rec.get("answer_seconds", 0.0)
                rec["dataset_seconds"] = fit_s + answers if ok else None
                new.append(rec)
        self._store(new)

    def inferred_graph(self, cell: Cell, k: int, problem, progress: Progress):
        """The discovered graph of dataset ``k`` (from an earlier run's record when there is one)."""
        old = [r for r in self.records if r.get("part") == "discovery" and r["cell"] == cell.name
               and r["index"] == k and r.get("status") == "ok"
               and (self.cfg.discovery_method is None or r["method"] == self.cfg.discovery_method)]
        if not old:
            progress.show(f"{cell.name} #{k} discovery")
            old = [{"part": "discovery", "cell": cell.name, "d": cell.d, "n_context": cell.n_context, "index": k,
                    "load1": _load(), **discovery_record(problem, self.cfg.discovery_method, seed=k)}]
            self._store(old)
        return graph_from_record(old[0], problem.columns)

    # -- sachs --
    def run_sachs(self, progress: Progress) -> None:
        from condfip.bench.sachs_mmd import (
            SACHS_SEED,
            SPLIT_ROWS,
            SachsDataMissing,
            load_sachs,
            mmd2_unbiased,
            split,
        )

        try:
            data, graph = load_sachs(self.cfg.sachs_dir)
        except SachsDataMissing as err:
            self.cfg.notes.append(f"Sachs not run: {err}")
            print(f"Sachs skipped: {err}", file=sys.stderr)
            progress.done += self.cfg.sachs_splits
            return
        methods = [m for m in self.cfg.methods if m != "oracle"]
        for k in range(self.cfg.sachs_splits):
            context, held = split(data, k)
            new = []
            base = {"part": "sachs", "task": "mmd", "cell": "sachs", "d": data.shape[1],
                    "n_context": SPLIT_ROWS, "index": k}
            if ("sachs", "real", "mmd", "sachs", k) not in self.done:
                real = mmd2_unbiased(context.to_numpy(), held.to_numpy())
                new.append({**base, "method": "real", "value": real, "status": "ok", "seconds": 0.0,
                            "load1": _load(), "error": None})
            for m in methods:
                if ("sachs", m, "mmd", "sachs", k) in self.done:
                    continue
                progress.show(f"sachs split {k} {m}")
                rec = {**base, "method": m, "value": None, "error": None, **self._common(m)}
                start = time.perf_counter()
                try:
                    scm, fit_s = self.methods.fit(m, context, graph, seed=k)
                    answer_start = time.perf_counter()
                    gen = scm.sample(SPLIT_ROWS, seed=SACHS_SEED + k)
                    answer_s = time.perf_counter() - answer_start
                    rec.update(value=mmd2_unbiased(gen[list(data.columns)].to_numpy(), held.to_numpy()),
                               status="ok", fit_seconds=fit_s, seconds=fit_s + answer_s)
                except FitTimeout as err:
                    rec.update(status="timeout", error=str(err), seconds=err.seconds)
                except Exception as err:  # noqa: BLE001 - a failed method is a result
                    rec.update(status="failed", error=f"{type(err).__name__}: {err}"[:500],
                               seconds=time.perf_counter() - start)
                new.append(rec)
            self._store(new)
            progress.show(f"sachs split {k}", advance=True)

    # -- scale --
    def scale_grid(self) -> list[tuple[int, int]]:
        if "scale" not in self.cfg.parts or "condfip" not in self.cfg.methods:
            return []
        grid = self.cfg.scale_grid or (QUICK_GRID if self.cfg.quick else FULL_GRID)
        return [(d, n) for d, n in grid if not self.cfg.cells or _matches(f"scale/d{d}/n{n}", self.cfg.cells)]

    def run(self) -> Path:
        cfg = self.cfg
        start, load_start = time.perf_counter(), _load()
        cells = self.synthetic_cells()
        run_sachs = "sachs" in cfg.parts and (not cfg.cells or _matches("sachs", cfg.cells))
        grid = self.scale_grid()
        total = sum(c.count for c in cells) + (cfg.sachs_splits if run_sachs else 0) + len(grid)
        progress = Progress(total, cfg.quiet)
        try:
            for cell in cells:
                for k in range(cell.count):
                    self.run_dataset(cell, k, progress)
                    progress.show(f"{cell.name} #{k}", advance=True)
            if run_sachs:
                self.run_sachs(progress)
            for d, n in grid:
                progress.show(f"scale d={d} n={n}")
                if ("scale", "condfip", "scale", f"scale/d{d}/n{n}", 0) not in self.done:
                    self._store([{**measure(d, n, weights=cfg.weights), **self._common("condfip")}])
                progress.show(f"scale d={d} n={n}", advance=True)
        finally:
            progress.close()
            self.methods.close()
        return self.write_report(start, load_start)

    def write_report(self, start: float, load_start: float) -> Path:
        cfg = self.cfg
        notes = list(cfg.notes)
        if cfg.quick:
            notes.append(f"quick mode: d in {{10, 20}}, n = 400, 3 SCMs per cell; Sachs with "
                         f"{cfg.sachs_splits} splits (the full run uses 10); scale grid reduced to "
                         "d in {10, 20} x n in {400, 10000}")
        else:
            notes.append("full run: 9 SCMs per cell for d <= 20 at n = 400, 5 for d <= 20 at n in "
                         "{50, 100, 1000}, 3 for d in {50, 100}")
        notes.append(f"DoWhy run only for d <= {cfg.dowhy_max_d}; its fits are limited to "
                     f"{cfg.dowhy_timeout:.0f} s each" if cfg.dowhy_timeout else
                     f"DoWhy run only for d <= {cfg.dowhy_max_d}; fits in process, no time limit")
        if self.resumed:
            notes.append(f"resumed: {self.resumed} records came from earlier runs into this folder")
        meta = {
            "command": cfg.command or shlex.join(sys.argv),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "git_commit": _git_commit(),
            "weights_sha256": self.sha or "(condfip not run)",
            "machine": f"{platform.platform()}, {platform.machine()}",
            "cpu_count": os.cpu_count(),
            "load_start": load_start,
            "load_end": _load(),
            "wall_seconds": time.perf_counter() - start,
            "versions": _versions(),
            "mode": "quick" if cfg.quick else "full",
            "dowhy_timeout_s": cfg.dowhy_timeout,
            "dowhy_max_d": cfg.dowhy_max_d,
            "notes": "; ".join(notes),
        }
        if cfg.plots:
            from condfip.bench.plots import write_plots

            meta["plots"] = write_plots(self.records, cfg.out, SYNTH_METHODS_ORDER)
        atomic_write_text(cfg.out / "meta.json", json.dumps(meta, indent=2) + "\n")
        path = cfg.out / "results.md"
        atomic_write_text(path, render(self.records, meta, SYNTH_METHODS_ORDER) + "\n")
        return path


def _matches(name: str, patterns: list[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def run_bench(cfg: BenchConfig) -> Path:
    """Run the benchmark described by ``cfg``; returns the path of results.md."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    return Bench(cfg).run()
