"""Export a training run's EMA weights into the package with a model card built from the run's validation.

Usage: python scripts/ship_weights.py RUN_DIR --cpu-hours H [--out src/condfip/weights]

The default abduction is the one with the lower mean validation noise RMSE (encoder head vs decoder).
Ship only when the run measured better than the weights already shipped (compare the cards' figures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from condfip.pretrained import WEIGHTS_DIR, export_weights


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--cpu-hours", type=float, required=True)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()
    state = torch.load(args.run / "checkpoint.pt", map_location="cpu", weights_only=False)
    validation = state["history"][-1]
    default = "encoder" if validation["enc mean"] < validation["dec mean"] else "decoder"
    card = {
        "prior": state["config"]["prior"],
        "datasets_seen": state["step"] * state["config"]["batch_size"],
        "cpu_hours": args.cpu_hours,
        "default_abduction": default,
        "validation": validation,
        "validation_note": "noise RMSE on nodes with parents, validation suite (condfip.train.VALIDATION_SEED), "
                           "3 SCMs per cell, 400 context + 400 query rows; 'enc' = encoder-head abduction, "
                           "'dec' = decoder abduction",
    }
    path = export_weights(args.run / "checkpoint.pt", args.out, card)
    print(json.dumps({"weights": str(path), "default_abduction": default, "step": state["step"]}))


if __name__ == "__main__":
    main()
