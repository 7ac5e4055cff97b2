"""The ``condfip`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import condfip
from condfip.cli_options import (
    DataOrDemo,
    FloatOverride,
    GraphOrDemo,
    IntOverride,
    Seed,
    Weights,
    out_folder,
)
from condfip.commands import COMMANDS, OneLineErrors, one_line

# OneLineErrors prints any command's InputError as one line "error: <message>" and exits 1
app = typer.Typer(add_completion=False, no_args_is_help=True, cls=OneLineErrors, pretty_exceptions_enable=False,
                  help="Zero-shot structural causal models: a dataset and its DAG in, an SCM out.")


def _version(value: bool):
    if value:
        typer.echo(f"condfip {condfip.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                      help="Print the version and exit.")] = None):
    """condfip command line."""


@app.command()
def train(
    out: out_folder("the run: checkpoint.pt, losses.jsonl (resumes if present)"),
    config: Annotated[Path | None, typer.Option(
        help="JSON file of TrainConfig fields (model fields under 'model').")] = None,
    init_from: Annotated[str | None, typer.Option(
        help="Warm start: a checkpoint.pt, a weights folder or 'pretrained'; weights of a network with fewer "
        "blocks are grown into the config's.")] = None,
    encoder_steps: IntOverride = None,
    decoder_steps: IntOverride = None,
    batch_size: IntOverride = None,
    chunks: Annotated[int | None, typer.Option(
        help="Independently simulated chunks per step (multiple of ranks).")] = None,
    lr: FloatOverride = None,
    eval_every: IntOverride = None,
    checkpoint_every: IntOverride = None,
    seed: IntOverride = None,
    threads: IntOverride = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (after a checkpoint) after this many minutes.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress lines.")] = False,
):
    """Train Cond-FiP on simulated SCMs (single process, or under torchrun for data parallel)."""
    from condfip.train import TrainConfig, Trainer, init_distributed, with_overrides

    cfg = TrainConfig.from_dict(json.loads(config.read_text())) if config else TrainConfig()
    cfg = with_overrides(cfg, encoder_steps=encoder_steps, decoder_steps=decoder_steps, batch_size=batch_size,
                         chunks=chunks, lr=lr, eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed,
                         threads=threads)
    device = init_distributed()
    trainer = Trainer(cfg, out, device=device, init_from=init_from, quiet=quiet)
    trainer.run(max_seconds=None if max_minutes is None else 60 * max_minutes, log_path=Path(out) / "losses.jsonl")


@app.command("export-weights")
def export_weights_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint.pt")],
    out: out_folder("condfip.safetensors + condfip.json"),
    card: Annotated[Path | None, typer.Option(
        help="JSON with extra model-card fields (datasets seen, CPU-hours...)")] = None,
):
    """Export a checkpoint's EMA weights as shippable safetensors + model card."""
    from condfip.pretrained import export_weights

    extra = json.loads(card.read_text()) if card else {}
    path = export_weights(checkpoint, out, extra)
    typer.echo(f"wrote {path}")


@app.command("simulate")
def simulate_cmd(
    out: out_folder("data.csv, noise.csv, graph.csv, meta.json"),
    preset: Annotated[str, typer.Option(help="Prior preset (condfip.simulate.PRESETS).")] = "paper-in",
    mechanism: Annotated[str | None, typer.Option(
        help="linear|rff|mlp|additive (default: drawn from the preset).")] = None,
    graph: Annotated[str | None, typer.Option(
        help="er|sf-in|sf-out|ws|sbm|grg (default: drawn from the preset).")] = None,
    noise: Annotated[str | None, typer.Option(
        help="gaussian|laplace|uniform|student-t|mixture (default: drawn from the preset).")] = None,
    heteroscedastic: Annotated[bool, typer.Option(
        "--heteroscedastic", help="Heteroscedastic noise (default: the preset's).")] = False,
    edges_per_node: Annotated[float | None, typer.Option(
        help="Expected edges per node (default: drawn from the preset's range).")] = None,
    nodes: Annotated[int | None, typer.Option(help="Nodes (default: drawn from the preset's range).")] = None,
    samples: Annotated[int, typer.Option(help="Rows.")] = 800,
    seed: Seed = 0,
):
    """Simulate one dataset from a synthetic SCM prior and write it with its ground truth."""
    import dataclasses
    import math

    import numpy as np

    from condfip.simulate import GRAPHS, MECHANISMS, NOISES, PRESETS, streams
    from condfip.simulate import simulate as simulate_dataset
    from condfip.simulate.files import write_dataset

    def fail(message: str):
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if preset not in PRESETS:
        fail(f"unknown --preset {preset!r}; choose one of {', '.join(PRESETS)}")
    for flag, value, allowed in (("--mechanism", mechanism, MECHANISMS), ("--graph", graph, GRAPHS),
                                 ("--noise", noise, NOISES)):
        if value is not None and value not in allowed:
            fail(f"unknown {flag} {value!r}; choose one of {', '.join(allowed)}")
    if edges_per_node is not None and not (math.isfinite(edges_per_node) and edges_per_node > 0):
        fail(f"--edges-per-node must be a positive number, got {edges_per_node}")
    if nodes is not None and nodes < 2:
        fail(f"--nodes must be at least 2, got {nodes}")
    if samples < 2:
        fail(f"--samples must be at least 2 (data are standardised), got {samples}")
    if seed < 0:
        fail(f"--seed must be non-negative, got {seed}")

    # the flags override the preset's fields; what no flag fixes is drawn from the (overridden) prior
    flags = {"mechanism": mechanism, "graph": graph, "noise": noise, "edges_per_node": edges_per_node,
             "nodes": nodes, "heteroscedastic": True if heteroscedastic else None}
    overrides = {k: v for k, v in flags.items() if v is not None}
    changes = {"mechanisms": (mechanism,), "mechanism_weights": None} if mechanism else {}
    changes.update({"graphs": (graph,)} if graph else {})
    changes.update({"noises": (noise,)} if noise else {})
    changes.update({"edges_per_node": (edges_per_node, edges_per_node)} if edges_per_node is not None else {})
    changes.update({"nodes": (nodes, nodes)} if nodes is not None else {})
    changes.update({"heteroscedastic": True} if heteroscedastic else {})
    prior = dataclasses.replace(PRESETS[preset], **changes)
    choice_rng, _ = streams(seed, 0, 1_000_003)  # independent of the dataset's own stream (seed, 0)
    weights = np.asarray(prior.mechanism_weights or [1.0] * len(prior.mechanisms), dtype=float)
    mechanism = str(choice_rng.choice(prior.mechanisms, p=weights / weights.sum()))
    graph = str(choice_rng.choice(prior.graphs))
    noise = str(choice_rng.choice(prior.noises))
    d = int(choice_rng.integers(prior.nodes[0], prior.nodes[1] + 1))
    from condfip.memory import check_simulation_memory

    check_simulation_memory(d, samples)  # before anything is allocated (InputError: one line, exit 1)
    try:
        dataset = simulate_dataset(prior, nodes=d, samples=samples, seed=seed, mechanism=mechanism,
                                   graphs=(graph,), noises=(noise,))
    except ValueError as err:
        fail(f"simulation failed: {err}")
    meta = {
        "preset": preset,
        "prior": prior.to_dict(),
        "overrides": overrides,
        "seed": seed,
        "index": 0,
        "graph_models": [graph],
        "regenerate": "condfip.simulate.simulate(Prior.from_dict(prior), nodes=nodes, samples=samples, seed=seed, "
                      "index=index, mechanism=mechanism, graphs=tuple(graph_models), noises=tuple(noise_families))",
    }
    try:
        write_dataset(dataset, out, meta)
    except OSError as err:
        fail(f"cannot write {out}: {err.strerror or err}")
    typer.echo(f"wrote {out}: {d} nodes, {samples} rows, {mechanism} mechanism, {graph} graph, {noise} noise, "
               f"{dataset.rescaled_fraction:.0%} of nodes rescaled")


@app.command("bench")
def bench_cmd(
    out: out_folder("results.json, results.md, plots"),
    quick: Annotated[bool, typer.Option("--quick", help="d in {10, 20}, n = 400, 3 SCMs per cell.")] = False,
    methods: Annotated[str | None, typer.Option(
        help="Comma-separated subset of condfip, condfip-network, dowhy, ols-parents, oracle, zero-noise, "
        "condfip-decoder, condfip-encoder.")
    ] = None,
    cells: Annotated[str | None, typer.Option(
        help="Comma-separated glob patterns over cell names, e.g. 'paper-in/linear/d10/*,sachs,scale/*'.")
    ] = None,
    parts: Annotated[str | None, typer.Option(
        help="Which parts to run (default: synthetic,sachs,scale; with --graph inferred: synthetic).")] = None,
    dowhy_timeout: Annotated[float, typer.Option(
        help="Seconds per DoWhy fit (default: quick 90, full 600; 0: in process, no limit).")] = -1.0,
    sachs_dir: Annotated[Path | None, typer.Option(
        help="Folder with sachs.csv + sachs-graph.csv (default: the package data).")] = None,
    sachs_splits: Annotated[int | None, typer.Option(
        help="Random 400/400 splits (default: quick 3, full 10).")] = None,
    weights: Weights = None,
    retry_failed: Annotated[bool, typer.Option(
        help="Recompute records of an earlier run that failed or timed out.")] = False,
    graph: Annotated[str, typer.Option(
        "--graph", help="true: the true graphs; inferred: also every method on a graph discovered from the "
        "context rows (condfip.discover), beside the true-graph figures, with the SHD (default methods: "
        "condfip,dowhy).")] = "true",
    discovery_method: Annotated[str | None, typer.Option(
        help="The discovery method for --graph inferred (default: condfip.discover's).")] = None,
):
    """Benchmark condfip beside DoWhy-gcm and reference estimators (the paper's protocol, one command)."""
    import shlex
    import sys

    from condfip.bench.run import BenchConfig, run_bench

    def split(text: str) -> list[str]:
        return [v.strip() for v in text.split(",") if v.strip()]

    if "bench" in sys.argv[1:]:
        argv = sys.argv[1:]
    else:  # called in process (tests): the equivalent command line
        argv = ["bench", "--out", str(out)] + (["--quick"] if quick else [])
        argv += ["--retry-failed"] if retry_failed else []
        given = {"--methods": methods, "--cells": cells, "--parts": parts, "--dowhy-timeout": dowhy_timeout,
                 "--sachs-dir": sachs_dir, "--sachs-splits": sachs_splits, "--weights": weights,
                 "--graph": None if graph == "true" else graph, "--discovery-method": discovery_method}
        argv += [str(x) for k, v in given.items() if v is not None for x in (k, v)]
    from condfip.bench.inferred import INFERRED_METHODS

    inferred = graph == "inferred"
    parts = parts or ("synthetic" if inferred else "synthetic,sachs,scale")
    try:
        chosen = tuple(split(methods)) if methods else (INFERRED_METHODS if inferred else BenchConfig.methods)
        cfg = BenchConfig(out=out, quick=quick, methods=chosen, graph=graph, discovery_method=discovery_method,
                          cells=split(cells) if cells else None, parts=tuple(split(parts)),
                          dowhy_timeout=None if dowhy_timeout == 0 else dowhy_timeout,
                          sachs_dir=str(sachs_dir) if sachs_dir else None, sachs_splits=sachs_splits,
                          weights=str(weights) if weights else None, retry=retry_failed,
                          command=shlex.join(["condfip", *argv]))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    typer.echo(f"wrote {run_bench(cfg)}")


@app.command("serve")
def serve_cmd(
    data: DataOrDemo = None,
    graph: GraphOrDemo = None,
    host: Annotated[str, typer.Option(help="Address to listen on; only 127.0.0.1 unless you ask.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0: a free one (printed).")] = 0,
    weights: Weights = None,
):
    """A local what-if page: click nodes of the DAG, set interventions with sliders, watch distributions, effects
    and counterfactuals (needs the web extra: pip install 'condfip[web]').

    Example: condfip serve data.csv --graph graph.csv
    """
    from condfip.web import serve

    serve(data, graph, host=host, port=port, weights=weights, echo=typer.echo)


# the users' commands (code in condfip.commands): sample, noise, counterfactual, effect, demo
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


def run() -> None:
    """Console entry point: ``app`` with InputError as one line ``error: <message>`` (exit 1), no traceback."""
    import sys

    try:
        app()
    except condfip.InputError as err:
        typer.echo(f"error: {one_line(err)}", err=True)
        sys.exit(1)
