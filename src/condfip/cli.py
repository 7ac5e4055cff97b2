"""The ``condfip`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

import condfip

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Zero-shot structural causal models: a dataset and its DAG in, an SCM out.")


def _version(value: bool):
    if value:
        typer.echo(f"condfip {condfip.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")):
    """condfip command line."""


@app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoint.pt, losses.jsonl (resumes if present)."),
    config: Optional[Path] = typer.Option(None, help="JSON file of TrainConfig fields (model fields under 'model')."),
    init_from: Optional[str] = typer.Option(None, help="Warm start: a checkpoint.pt, a weights folder or 'pretrained'."),
    encoder_steps: Optional[int] = typer.Option(None),
    decoder_steps: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    chunks: Optional[int] = typer.Option(None, help="Independently simulated chunks per step (multiple of ranks)."),
    lr: Optional[float] = typer.Option(None),
    eval_every: Optional[int] = typer.Option(None),
    checkpoint_every: Optional[int] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    max_minutes: Optional[float] = typer.Option(None, help="Stop (after a checkpoint) after this many minutes."),
    quiet: bool = typer.Option(False, help="No progress lines."),
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
    checkpoint: Path = typer.Argument(..., help="A training checkpoint.pt"),
    out: Path = typer.Option(..., "--out", help="Folder for condfip.safetensors + condfip.json"),
    card: Optional[Path] = typer.Option(None, help="JSON with extra model-card fields (datasets seen, CPU-hours...)"),
):
    """Export a checkpoint's EMA weights as shippable safetensors + model card."""
    from condfip.pretrained import export_weights

    extra = json.loads(card.read_text()) if card else {}
    path = export_weights(checkpoint, out, extra)
    typer.echo(f"wrote {path}")
