"""Export a training run's EMA weights into the package with a model card built from the run's validation.

Usage: python tools/ship_weights.py RUN_DIR --cpu-hours H [--out src/condfip/weights]

The checkpoint's EMA weights are validated afresh (the card's figures are those of the shipped tensors); the
default abduction is the one with the lower mean validation noise RMSE (encoder head vs decoder).
Ship only when the run measured better than the weights already shipped (compare the cards' figures).
Then recalibrate ``effect``'s model error for the new weights (``weights/effect.json``; a test checks it belongs
to the shipped weights): ``python tools/effect_coverage.py run --scms 96 --seed 1 --out CAL.json``, then
``python tools/effect_coverage.py calibrate CAL.json``, and report its coverage on held-out seeds (README).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from condfip.pretrained import WEIGHTS_DIR, checkpoint_network, export_weights
from condfip.train import validation_scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--cpu-hours", type=float, required=True)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--init-datasets", type=int, default=0, help="datasets seen by the warm-start source")
    args = parser.parse_args()
    network, state = checkpoint_network(args.run / "checkpoint.pt")
    validation = {"step": state["step"], **validation_scores(network, 3, torch.device("cpu"))}
    default = "encoder" if validation["enc mean"] < validation["dec mean"] else "decoder"
    card = {
        "prior": state["config"]["prior"],
        "datasets_seen": args.init_datasets + state["step"] * state["config"]["batch_size"],
        "cpu_hours": args.cpu_hours,
        "default_abduction": default,
        "validation": validation,
        "validation_note": "noise RMSE on nodes with parents, validation suite (condfip.train.VALIDATION_SEED), "
                           "3 SCMs per cell, 400 context + 400 query rows; 'enc' = encoder-head abduction, "
                           "'dec' = decoder abduction",
    }
    path = export_weights(args.run / "checkpoint.pt", args.out, card)
    print(json.dumps({"weights": str(path), "default_abduction": default, "validation": validation}))


if __name__ == "__main__":
    main()
