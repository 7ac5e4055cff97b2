"""Scale table: wall time and peak memory of ``infer`` + ``sample`` per (d, n), each cell in a fresh process.

The parent simulates the dataset (paper-in, linear, stream ``(BENCH_SEED + 1, 1000 * d)``), writes it to a
temporary folder and runs ``python -m condfip.bench.scale DATA.npy EDGES.json [WEIGHTS]`` in a new process.
The child imports condfip, loads the weights and the data, then times ``infer`` (contexts above the model's
``max_context`` are subsampled by ``infer``) and ``sample(1000)`` (1000 fresh rows in every cell, so the
sampling cost depends on d only). Peak
memory is the child's high-water mark (``VmHWM`` on Linux, so it includes Python, torch and the data but not the
parent; the child's baseline before ``infer`` is reported beside it).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL_GRID = [(d, n) for d in (10, 20, 50, 100) for n in (400, 1000, 10000)]
QUICK_GRID = [(d, n) for d in (10, 20) for n in (400, 10000)]
SAMPLE_ROWS = 1000


def _rss_mb() -> float:
    """This process's peak resident set size in MiB. Linux: ``VmHWM`` of /proc/self/status, which starts
    afresh at exec; ``ru_maxrss`` would carry over the high-water mark of the forking parent (the benchmark
    process, several GB after the large cells). Elsewhere ``ru_maxrss`` is the best there is."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _child(data_path: str, edges_path: str, weights: str | None) -> dict:
    import networkx as nx
    import pandas as pd

    import condfip

    model = condfip.load_pretrained(weights or None)
    x = np.load(data_path)
    frame = pd.DataFrame(x, columns=[f"X{k}" for k in range(x.shape[1])])
    graph = nx.DiGraph()
    graph.add_nodes_from(frame.columns)
    graph.add_edges_from(json.loads(Path(edges_path).read_text()))
    base = _rss_mb()
    start = time.perf_counter()
    scm = model.infer(frame, graph)
    mid = time.perf_counter()
    rows = scm.sample(SAMPLE_ROWS, seed=0)
    end = time.perf_counter()
    assert np.isfinite(rows.to_numpy()).all()
    return {"infer_seconds": mid - start, "sample_seconds": end - mid, "seconds": end - start,
            "base_rss_mb": base, "peak_rss_mb": _rss_mb(), "context_used": len(scm.context),
            "sampled_rows": len(rows),
            "threads": __import__("torch").get_num_threads()}


def measure(d: int, n: int, *, weights: str | None = None, timeout: float = 1800.0) -> dict:
    """One scale cell in a fresh process; a record with status ok / failed / timeout."""
    from condfip.bench.suites import BENCH_SEED
    from condfip.simulate import get_prior, simulate

    record = {"part": "scale", "method": "condfip", "task": "scale", "cell": f"scale/d{d}/n{n}", "d": d,
              "n_context": n, "index": 0}
    ds = simulate(get_prior("paper-in"), nodes=d, samples=n, seed=BENCH_SEED + 1, index=1000 * d,
                  mechanism="linear")
    with tempfile.TemporaryDirectory(prefix="condfip-scale-") as tmp:
        data_path, edges_path = os.path.join(tmp, "data.npy"), os.path.join(tmp, "edges.json")
        np.save(data_path, ds.data.to_numpy())
        Path(edges_path).write_text(json.dumps([list(e) for e in ds.scm.graph.edges]))
        cmd = [sys.executable, "-m", "condfip.bench.scale", data_path, edges_path]
        cmd += [str(weights)] if weights else []
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**record, "status": "timeout", "value": None, "seconds": time.perf_counter() - start,
                    "error": f"exceeded {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**record, "status": "failed", "value": None, "seconds": time.perf_counter() - start,
                "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:500]}
    result = json.loads(lines[-1])
    return {**record, **result, "status": "ok", "value": result["seconds"], "error": None}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)))
