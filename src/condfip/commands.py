"""The user-facing CLI commands (registered in ``condfip.cli``): discover, sample, noise, counterfactual, effect,
demo.

Every bad input raises :class:`~condfip.errors.InputError`; :class:`OneLineErrors` (the CLI's group class)
prints it as one line ``error: <message>`` on stderr and exits with status 1, for every command.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from typer.core import TyperGroup

from condfip.atomic import atomic_write
from condfip.cli_options import (
    Data,
    Do,
    Graph,
    Isolated,
    Mechanisms,
    Seed,
    Shift,
    TableOut,
    Weights,
    out_folder,
)
from condfip.errors import InputError

EXIT_INPUT_ERROR = 1
EXIT_USAGE_ERROR = 2


def one_line(message: object) -> str:
    """A message flattened onto one line."""
    return " ".join(str(message).splitlines()).strip() or "bad input"


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: one line ``warning: <message>`` on stderr (no source line)."""
    typer.echo(f"warning: {one_line(message)}", err=True)


class OneLineErrors(TyperGroup):
    """The CLI's command group: an InputError from any command becomes ``error: <message>`` and exit 1;
    every warning prints as one line ``warning: <message>``."""

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = print_warning
            try:
                return super().invoke(ctx)
            except InputError as err:
                typer.echo(f"error: {one_line(err)}", err=True)
                raise typer.Exit(EXIT_INPUT_ERROR) from None
            except typer.BadParameter as err:  # a value typer could not parse, e.g. --seed 1.5
                typer.echo(f"error: {one_line(err.format_message()).rstrip('.')}; fix: see condfip "
                           f"{ctx.invoked_subcommand or ''} --help", err=True)
                raise typer.Exit(EXIT_USAGE_ERROR) from None


# --------------------------------------------------------------------------------------------------
# argument parsing


def _parse_number(text: str, option: str, raw: str) -> float:
    try:
        value = float(text.strip())
    except (ValueError, OverflowError):
        raise InputError(f"{option} {raw!r}: the value {text.strip()!r} is not a number; fix: write NODE=VALUE, "
                         f"e.g. {option} X=1.5") from None
    if not math.isfinite(value):
        raise InputError(f"{option} {raw!r}: the value must be a finite number, got {text.strip()!r}; fix: pass "
                         f"a finite value in the data's units")
    return value


def parse_assignments(values: list[str] | None, option: str, columns: list[str] | None = None) -> dict[str, float]:
    """``["NODE=VALUE", ...]`` as ``{node: value}``. The node name is split off at the LAST '=' (names may
    contain '='). With ``columns``, unknown nodes are refused. Raises InputError naming ``option``."""
    out: dict[str, float] = {}
    for raw in values or []:
        raw = str(raw)
        if "=" not in raw:
            raise InputError(f"{option} {raw!r} is malformed: expected NODE=VALUE; fix: e.g. {option} X=1.5")
        node, _, text = raw.rpartition("=")
        if not node.strip():
            raise InputError(f"{option} {raw!r} has no node name before '='; fix: write NODE=VALUE, "
                             f"e.g. {option} X=1.5")
        value = _parse_number(text, option, raw)
        if columns is not None and node not in columns:
            stripped = node.strip()
            if stripped in columns:
                node = stripped
            else:
                shown = ", ".join(repr(c) for c in columns[:10]) + (" ..." if len(columns) > 10 else "")
                raise InputError(f"{option} {raw!r} names unknown node {node!r}; fix: choose one of the data's "
                                 f"columns ({shown})")
        if node in out:
            raise InputError(f"{option} sets node {node!r} twice; fix: give each node once")
        out[node] = value
    return out


def _shift(delta: float):
    return lambda x: x + delta


def interventions_from(do: list[str] | None, shift: list[str] | None, columns: list[str],
                       required: bool = False) -> dict:
    """Hard (``--do``) and shift (``--shift``) interventions as one dict for ``scm.do``."""
    hard = parse_assignments(do, "--do", columns)
    shifts = parse_assignments(shift, "--shift", columns)
    both = sorted(set(hard) & set(shifts))
    if both:
        raise InputError(f"node(s) {both} get both --do and --shift; fix: give each node one intervention")
    if required and not hard and not shifts:
        raise InputError("no intervention given; fix: pass at least one --do NODE=VALUE (or --shift NODE=DELTA)")
    return {**hard, **{node: _shift(delta) for node, delta in shifts.items()}}


# --------------------------------------------------------------------------------------------------
# inputs and outputs


def _read(data: str) -> pd.DataFrame:
    """DATA as a checked float DataFrame (few-distinct-values warnings are not printed)."""
    import warnings

    from condfip.inputs import InputWarning, read_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return read_data(data)


GRAPH_AUTO = "auto"  # --graph auto: discover the graph from the data (condfip.discover, default method)


def _discovered(frame: pd.DataFrame):
    """``--graph auto``: the graph discovered from ``frame``, with one line on stderr saying how."""
    from condfip.discover import discover

    graph = discover(frame)
    typer.echo(f"graph: discovered by {graph.graph['method']} ({graph.number_of_edges()} edges, "
               f"{graph.graph['resamples']} subsamples; write it with `condfip discover`)", err=True)
    return graph


def _infer(frame: pd.DataFrame, graph: str, weights: Path | None, isolated: list[str] | None = None,
           mechanisms: str | None = None):
    """Read GRAPH (``auto``: discover it; plus the ``isolated`` nodes), check the memory estimate, infer the SCM
    of ``frame`` with ``mechanisms`` (None: infer's default)."""
    from condfip.inference import load_pretrained
    from condfip.inputs import read_graph, validate
    from condfip.memory import check_memory

    source = _discovered(frame) if graph == GRAPH_AUTO else graph
    frame, dag = validate(frame, read_graph(source, nodes=list(frame.columns), isolated=isolated))
    model = load_pretrained(weights)
    check_memory(len(frame), frame.shape[1], model.network.config)
    options = {} if mechanisms is None else {"mechanisms": mechanisms}
    return model.infer(frame, dag, **options)


TABLE_WRITERS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}  # the -o suffixes, by writer


def check_output(out: Path | None) -> Path | None:
    """``out`` checked before any work: a suffix with a writer (.csv, .parquet, .pq) and a target that is new
    or a regular file (never a directory, device, FIFO; a symlink is written through)."""
    from condfip.atomic import writable_target

    if out is None:
        return None
    out = Path(out)
    if out.suffix.lower() not in TABLE_WRITERS:
        shown = repr(out.suffix) if out.suffix else "no suffix"
        raise InputError(f"output file {str(out)!r} has {shown}, and condfip writes only CSV (.csv) or Parquet "
                         f"(.parquet, .pq); fix: name the output e.g. {out.stem or 'out'}.csv")
    writable_target(out, what="output file ")
    return out


def write_table(frame: pd.DataFrame, out: Path | None, index: bool = False) -> None:
    """CSV on stdout, or ``out`` (CSV, or Parquet for .parquet/.pq) written atomically."""
    if out is None:
        try:
            sys.stdout.write(frame.to_csv(index=index))
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `condfip sample ... | head`: the reader has gone, stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        return
    out = check_output(out)

    def write(tmp: str) -> None:
        if TABLE_WRITERS[out.suffix.lower()] == "CSV":
            frame.to_csv(tmp, index=index)
            return
        try:
            frame.to_parquet(tmp, index=index)
        except ImportError:
            raise InputError(f"writing {str(out)!r} as Parquet needs pyarrow; fix: pip install "
                             f"'condfip[parquet]' or write a .csv") from None

    atomic_write(out, write, what="output file ")


def print_trust_warnings(scm, frame: pd.DataFrame) -> None:
    """The trust report's warnings (condfip.report: only those with a measured accuracy loss behind them), one
    ``warning: ...`` line each on stderr, after the command's output."""
    from condfip.report import report

    for line in report(scm, None if hasattr(scm, "context") else frame).warnings:
        typer.echo(f"warning: {one_line(line)}", err=True)


def _keeps_index(frame: pd.DataFrame) -> bool:
    """Write the data's index only when it carries labels (not the default 0..n-1)."""
    return not isinstance(frame.index, pd.RangeIndex)


def sample(
    data: Data,
    graph: Graph,
    do: Do = None,
    shift: Shift = None,
    n: Annotated[int | None, typer.Option("-n", "--n", help="Rows to draw; default: the number of rows of "
                                          "DATA.")] = None,
    seed: Seed = 0,
    out: TableOut = None,
    weights: Weights = None,
    mechanisms: Mechanisms = None,
    isolated: Isolated = None,
):
    """Draw observational or interventional samples of the SCM inferred from DATA and GRAPH.

    Example: condfip sample data.csv --graph graph.csv --do X=1.5 --shift Z=-0.2 -n 1000 -o samples.csv
    """
    check_output(out)
    frame = _read(data)
    interventions = interventions_from(do, shift, list(frame.columns))
    if n is not None and n < 1:
        raise InputError(f"-n must be a positive number of rows, got {n}; fix: pass e.g. -n 1000")
    if n is not None:
        from condfip.memory import check_rows_memory

        check_rows_memory(n, frame.shape[1], "-n")  # before the network is even loaded
    scm = _infer(frame, graph, weights, isolated, mechanisms)
    write_table((scm.do(interventions) if interventions else scm).sample(n, seed=seed), out)
    print_trust_warnings(scm, frame)


def noise(data: Data, graph: Graph, out: TableOut = None, weights: Weights = None, mechanisms: Mechanisms = None,
          isolated: Isolated = None):
    """Abduct the noise of every row of DATA (one noise row per data row).

    Example: condfip noise data.csv --graph graph.csv -o noise.csv
    """
    check_output(out)
    frame = _read(data)
    scm = _infer(frame, graph, weights, isolated, mechanisms)
    write_table(scm.noise(frame), out, index=_keeps_index(frame))
    print_trust_warnings(scm, frame)


def counterfactual(data: Data, graph: Graph, do: Do = None, shift: Shift = None, out: TableOut = None,
                   weights: Weights = None, mechanisms: Mechanisms = None, isolated: Isolated = None):
    """One counterfactual row per row of DATA: what each row would have been under the intervention.

    Example: condfip counterfactual data.csv --graph graph.csv --do X=0 -o counterfactuals.csv
    """
    check_output(out)
    frame = _read(data)
    interventions = interventions_from(do, shift, list(frame.columns), required=True)
    scm = _infer(frame, graph, weights, isolated, mechanisms)
    write_table(scm.counterfactual(frame, interventions), out, index=_keeps_index(frame))
    print_trust_warnings(scm, frame)


def effect(
    data: Data,
    graph: Graph,
    target: Annotated[str, typer.Option("--target", "-t", help="The outcome node Y.")],
    do: Do = None,
    versus: Annotated[list[str] | None, typer.Option("--versus", help="Reference intervention NODE=VALUE "
                                                     "(repeatable); default: no intervention (the "
                                                     "observational mean).")] = None,
    n: Annotated[int, typer.Option("-n", "--n", help="Monte Carlo rows per estimate.")] = 1000,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap replicates (>= 20; 0: the estimate "
                                           "alone): the context rows resampled and the SCM re-inferred each "
                                           "time, in batches.")] = 50,
    level: Annotated[float, typer.Option("--level", help="Nominal coverage of the interval.")] = 0.95,
    seed: Seed = 0,
    out: TableOut = None,
    weights: Weights = None,
    mechanisms: Mechanisms = None,
    isolated: Isolated = None,
):
    """Average causal effect E[Y | do(X=a)] - E[Y | do(X=b)] with its interval (one CSV row).

    Without --versus the reference is no intervention: E[Y | do(X=a)] - E[Y]. The interval is estimate +-
    (z SD of the replicates + model_error): the resampling of the context rows, plus the model's own error as
    calibrated on simulated SCMs for the shipped weights and default mechanisms (others: resampling only).
    Calibrated on the simulator's prior, not a guarantee on your data (README: its coverage on held-out SCMs).
    Progress goes to stderr.

    Example: condfip effect data.csv --graph graph.csv --target Y --do X=1 --versus X=0
    """
    check_output(out)
    frame = _read(data)
    columns = list(frame.columns)
    interventions = interventions_from(do, None, columns, required=True)
    reference = parse_assignments(versus, "--versus", columns)
    if target not in columns:
        raise InputError(f"--target {target!r} is not a column of the data; fix: choose one of {columns}")
    if n < 1 or bootstrap < 0 or not 0 < level < 1:
        raise InputError(f"need -n >= 1, --bootstrap >= 0 and 0 < --level < 1, got {n}, {bootstrap}, {level}; "
                         f"fix: e.g. -n 1000 --bootstrap 50 --level 0.95")
    scm = _infer(frame, graph, weights, isolated=isolated, mechanisms=mechanisms)
    result = scm.effect(target, interventions, reference or None, n=n, bootstrap=bootstrap, seed=seed,
                        level=level, progress=_progress("bootstrap replicates: refits, then the fixed points"))
    write_table(pd.DataFrame([result.as_row()]), out)
    typer.echo(f"note: the {level:.0%} interval covers {result.covers}", err=True)
    print_trust_warnings(scm, frame)


def _progress(label: str):
    """A ``progress(done, total)`` callback: one line on stderr per step (redrawn in place on a terminal)."""
    import time

    start = time.perf_counter()
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        filled = int(20 * done / max(total, 1))
        line = f"[{'#' * filled}{'.' * (20 - filled)}] {done}/{total} {time.perf_counter() - start:.1f}s  {label}"
        sys.stderr.write(("\r" + line) if tty else line + "\n")
        if tty and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def demo(
    out: out_folder("the plots and tables") = Path("demo-out"),
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap replicates for the effect "
                                           "intervals (>= 20; 0: none).")] = 20,
    samples: Annotated[int, typer.Option("--samples", help="Generated cells per distribution.")] = 1000,
    seed: Seed = 0,
    weights: Weights = None,
):
    """Run the Sachs et al. (2005) flow-cytometry demo (shipped data, no network): infer the signalling
    SCM zero-shot, check it on held-out rows, intervene on PKC and plot the results.

    Example: condfip demo --out demo-out
    """
    from condfip.demo import run_demo

    if not (bootstrap == 0 or bootstrap >= 20) or samples < 10:
        raise InputError(f"need --bootstrap 0 or >= 20 and --samples >= 10, got {bootstrap} and {samples}; "
                         f"fix: e.g. --bootstrap 20 --samples 1000")
    run_demo(out, weights=weights, bootstrap=bootstrap, n_samples=samples,
             bootstrap_samples=min(400, samples), seed=seed, echo=typer.echo)


def discover(
    data: Data,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the edge list (cause,effect,"
                                             "confidence) here, atomically; default: CSV on stdout.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="pc, ges, boss or direct-lingam; default: "
                                               "chosen by the data's size (docs/discovery.md).")] = None,
    required: Annotated[str | None, typer.Option("--required", help="Edge-list CSV (cause,effect) of edges "
                                                 "that must be in the graph: a partial graph to complete.")] = None,
    forbidden: Annotated[str | None, typer.Option("--forbidden", help="Edge-list CSV (cause,effect) of edges "
                                                  "that must not be in the graph.")] = None,
    tier: Annotated[list[str] | None, typer.Option("--tier", help="Comma-separated columns of one tier, "
                                                   "earliest tier first (repeatable): no edge points to an "
                                                   "earlier tier.")] = None,
    resamples: Annotated[int | None, typer.Option("--resamples", help="Subsamples (random halves of the rows) "
                                                  "for the edges' stability and confidence.")] = None,
    seed: Seed = 0,
):
    """Discover a causal DAG from DATA and write it as an edge list with a confidence per edge;
    every command's --graph reads it back.

    Example: condfip discover data.csv --tier age --tier smoking,diet -o graph.csv
    """
    from condfip.discover import DEFAULT_RESAMPLES, edge_table
    from condfip.discover import discover as discover_graph
    from condfip.inputs import read_graph

    frame = _read(data)
    knowledge = {name: read_graph(path) for name, path in (("required", required), ("forbidden", forbidden))
                 if path is not None}
    tiers = [[name.strip() for name in group.split(",") if name.strip()] for group in tier] if tier else None
    graph = discover_graph(frame, method=method, tiers=tiers, seed=seed,
                           resamples=DEFAULT_RESAMPLES if resamples is None else resamples, **knowledge)
    typer.echo(f"discovered by {graph.graph['method']}: {graph.number_of_edges()} edges, "
               f"{graph.graph['resamples']} subsamples, {graph.graph['seconds']:.1f} s", err=True)
    write_table(edge_table(graph), out)


COMMANDS = {"discover": discover, "sample": sample, "noise": noise, "counterfactual": counterfactual, "effect": effect, "demo": demo}
