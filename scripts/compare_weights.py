"""Compare a training checkpoint's EMA weights with the shipped weights on the validation suite.

    python scripts/compare_weights.py runs/enc3/checkpoint.pt [--per-cell 9]

Prints the validation noise RMSE per cell (encoder-head and decoder abduction) for both, measured in one run on
the same SCMs (``condfip.train.VALIDATION_SEED``). ``--per-cell 9`` draws three times the SCMs the training
loop evaluates on; the ship decision in docs/training-log.md uses it. Pause any background training first.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from condfip.model import CondFiP, ModelConfig
from condfip.pretrained import build_network
from condfip.train import validation_scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--per-cell", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(2)
    shipped, _ = build_network(None)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    candidate = CondFiP(ModelConfig(**state["config"]["model"]))
    candidate.load_state_dict(state["ema"])
    candidate.eval()
    for name, network in (("shipped", shipped), ("candidate", candidate)):
        start = time.time()
        scores = validation_scores(network, args.per_cell, torch.device("cpu"))
        print(name, f"({time.time() - start:.0f} s)", json.dumps({k: round(v, 4) for k, v in scores.items()}))


if __name__ == "__main__":
    main()
