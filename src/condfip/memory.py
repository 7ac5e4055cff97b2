"""Memory budgets, checked before anything large is allocated.

:func:`check_memory` estimates the peak memory of ``infer`` (and of one decoder chunk when sampling) and
refuses a problem that does not fit; :func:`check_rows_memory` does the same for generated rows and
:func:`check_simulation_memory` for a simulation. ``CONDFIP_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix)
overrides the available memory read from ``/proc/meminfo``. ``ROW_CHUNK`` is how many query rows go through the
decoder at once (``condfip.inference``, ``condfip.effects``); the estimates assume it.
"""

from __future__ import annotations

import math
import os

from condfip.errors import InputError

MEMORY_ENV = "CONDFIP_MEMORY_LIMIT"
ROW_CHUNK = 4096  # query rows per decoder call


def estimate_infer_memory(n_context: int, d: int, config, query_rows: int = ROW_CHUNK) -> int:
    """Estimated peak bytes of ``infer`` (encoder over the context: sample-attention scores dominate,
    ``3 * heads * d * n^2`` floats) and of one decoder chunk of ``query_rows`` rows (node attention
    ``3 * heads * rows * d^2`` floats, plus with ``decoder_context`` the kept context keys and values,
    ``2 * layers * d * n * h`` floats), whichever is larger. ``n_context`` is capped at ``max_context``.
    Calibrated on CPU float32: within about 15% for d = 10-60, n = 500-1000."""
    cfg = config if isinstance(config, dict) else config.to_dict()
    n = min(int(n_context), int(cfg.get("max_context", n_context)))
    h, heads, ratio = int(cfg["width"]), int(cfg["heads"]), int(cfg.get("mlp_ratio", 2))
    per_token = (2 * ratio + 8) * h
    encoder = 4 * (3 * heads * d * n * n + per_token * d * n)
    decoder = 4 * (3 * heads * query_rows * d * d + per_token * query_rows * d)
    if cfg.get("decoder_context"):  # the cached context memory: keys and values per decoder block, kept
        decoder += 4 * 2 * int(cfg.get("decoder_layers", 3)) * d * n * h
    return int(max(encoder, decoder))


def _parse_bytes(text: str) -> int:
    units = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B") if text.strip() else ""
    suffix = raw[-1:] if raw[-1:] in units else ""
    number = raw[:-1] if suffix else raw
    try:
        value = float(number) * units[suffix]
    except ValueError:
        raise InputError(f"{MEMORY_ENV}={text!r} is not a size; fix: set it to bytes, e.g. 8G or 500M") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{MEMORY_ENV}={text!r} must be a positive size; fix: set it to e.g. 8G")
    return int(value)


def available_memory() -> int | None:
    """Bytes available for a new allocation: ``CONDFIP_MEMORY_LIMIT`` if set, else MemAvailable."""
    override = os.environ.get(MEMORY_ENV)
    if override:
        return _parse_bytes(override)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def refuse_if_too_large(need: int, task: str, fix: str, available: int | None = None) -> int:
    """Raise InputError when ``need`` bytes exceed the available memory: "``task`` needs about X but Y is
    available; fix: ``fix``". Returns ``need``."""
    have = available if available is not None else available_memory()
    if have is not None and need > have:
        raise InputError(f"the problem is too large for memory: {task} needs about {_size(need)} but {_size(have)} "
                         f"is available; fix: {fix}, free memory, or set {MEMORY_ENV} to override the limit")
    return need


def check_memory(n_context: int, d: int, config, available: int | None = None) -> int:
    """Refuse (InputError) a problem whose estimated peak memory exceeds the available memory.
    Returns the estimate in bytes."""
    cfg = config if isinstance(config, dict) else config.to_dict()
    n = min(int(n_context), int(cfg.get("max_context", n_context)))
    return refuse_if_too_large(estimate_infer_memory(n_context, d, config),
                               f"inferring {d} nodes from {n} context rows",
                               "use fewer nodes (a subgraph) or fewer rows", available)


BYTES_PER_GENERATED_CELL = 64  # noise, solution, result frame (8 B each, with copies) and its CSV text (~25 B)


def check_rows_memory(rows: int, d: int, what: str = "n", available: int | None = None) -> int:
    """Refuse (InputError) generating ``rows`` rows of ``d`` nodes when they would not fit in memory, before
    anything is allocated (``what`` names the option that asked for them)."""
    return refuse_if_too_large(BYTES_PER_GENERATED_CELL * int(rows) * int(d),
                               f"generating {what}={rows} rows of {d} nodes", f"ask for fewer rows ({what})",
                               available)


# measured peak memory of condfip.simulate above the interpreter's (CPU, float64): RFF mechanisms about
# 1.5 KB per node pair (d = 300, 600), MLP/RFF about 100-125 B per generated cell (d = 50, 20,000-80,000 rows)
SIMULATE_BYTES_PER_NODE_PAIR = 1700
SIMULATE_BYTES_PER_CELL = 160


def check_simulation_memory(nodes: int, samples: int, available: int | None = None) -> int:
    """Refuse (InputError) a simulation that would not fit in memory, before it starts."""
    need = SIMULATE_BYTES_PER_NODE_PAIR * nodes * nodes + SIMULATE_BYTES_PER_CELL * nodes * samples
    return refuse_if_too_large(need, f"simulating {nodes} nodes x {samples} rows",
                               "use fewer --nodes or --samples", available)
