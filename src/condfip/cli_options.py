"""The command line's shared options, declared once: the commands in ``condfip.cli`` and ``condfip.commands``
take their parameters as these ``Annotated`` types (typer copies an option for every command that uses it).
An option only one command has is declared beside that command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# ---- the data and its graph -------------------------------------------------------------------------------
_DATA = "Data table: CSV (header = node names) or Parquet (.parquet/.pq)."
Data = Annotated[str, typer.Argument(help=_DATA)]
DataOrDemo = Annotated[str | None, typer.Argument(help=f"{_DATA} Default: the Sachs demo data.")]

_GRAPH = typer.Option("--graph", "-g", help="The causal DAG: CSV edge list (cause,effect, optionally a confidence "
                      "column), CSV adjacency table, .gml or .graphml; node names = the data's columns. 'auto': "
                      "discover it from DATA (condfip discover's default method).")
Graph = Annotated[str, _GRAPH]
GraphOrDemo = Annotated[str | None, _GRAPH]  # condfip serve: without DATA, the demo's graph
Isolated = Annotated[list[str] | None, typer.Option("--isolated", help="A data column with no causes and no "
                                                  "effects (repeatable); every other column must be a node of "
                                                  "GRAPH.")]

# ---- the model --------------------------------------------------------------------------------------------
Weights = Annotated[Path | None, typer.Option("--weights", help="Another weights folder (condfip.safetensors + "
                                              "condfip.json) or .safetensors file; default: the shipped "
                                              "weights.")]
Mechanisms = Annotated[str | None, typer.Option("--mechanisms", help="What generates samples, interventions and "
                                         "counterfactuals: 'kernel' (default: a closed-form kernel regression per "
                                         "node on DATA) or 'network' (the network's decoder, regression-free).")]

# ---- interventions ----------------------------------------------------------------------------------------
Do = Annotated[list[str] | None, typer.Option("--do", help="Hard intervention NODE=VALUE in the data's units "
                                              "(repeatable; the node name is split at the last '=').")]
Shift = Annotated[list[str] | None, typer.Option("--shift", help="Shift intervention NODE=DELTA: x_node -> "
                                                 "x_node + DELTA (repeatable).")]

# ---- what comes out ---------------------------------------------------------------------------------------
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same output.")]
TableOut = Annotated[Path | None, typer.Option("--out", "-o", help="Write the table here (CSV, or Parquet for "
                                               ".parquet), atomically; default: CSV on stdout.")]


def out_folder(what: str):
    """``--out`` for a command that writes a folder: ``what`` says what goes in it."""
    return Annotated[Path, typer.Option("--out", help=f"Folder for {what}.")]


# ---- training: overrides of the config file's fields ------------------------------------------------------
_OVERRIDE = "Overrides the config's field of this name."
IntOverride = Annotated[int | None, typer.Option(help=_OVERRIDE)]
FloatOverride = Annotated[float | None, typer.Option(help=_OVERRIDE)]
