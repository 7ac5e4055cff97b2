"""Compare training checkpoints' EMA weights with the shipped weights on the validation suite.

    python tools/compare_weights.py runs/enc3/checkpoint.pt [more checkpoints] [--per-cell 9]

Prints the validation noise RMSE per cell (encoder-head and decoder abduction) and the decoder's mechanism RMSE on
rows drawn under interventions up to 3 SDs beyond the context (``int``) for all, measured in one run on
the same SCMs (``condfip.train.VALIDATION_SEED``). ``--per-cell 9`` draws three times the SCMs the training
loop evaluates on; the ship decision in docs/training-log.md uses it. Pause any background training first.
Also prints the tables in docs/training-log.md's format: the comparison, and (``--history``, no evaluation) the
checkpoint's own validation history.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from condfip.pretrained import build_network, checkpoint_network
from condfip.train import VALIDATION_CELLS, validation_scores

SHORT = {"paper-in": "in", "paper-out": "out", "linear": "LIN", "rff": "RFF"}


def header() -> list[str]:
    cells = ["/".join(SHORT.get(p, p) for p in (preset, mechanism)) + f"/d{d}" for preset, mechanism, d in VALIDATION_CELLS]
    return ["| row | " + " | ".join(cells) + " | mean |", "|---|" + "---|" * (len(cells) + 1)]


def row(label: str, scores: dict, kind: str) -> str:
    values = [scores[f"{kind} {preset}/{mechanism}/d{d}"] for preset, mechanism, d in VALIDATION_CELLS]
    return f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {scores[kind + ' mean']:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--per-cell", type=int, default=9)
    parser.add_argument("--history", action="store_true", help="print the checkpoint's validation history only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    _, state = checkpoint_network(args.checkpoints[0])
    if args.history:
        encoder_steps = state["config"]["encoder_steps"]
        print("\n".join(header()))
        for scores in state["history"]:
            kind = "enc" if scores["step"] <= encoder_steps else "dec"
            print(row(f"{scores['step']} {kind}", scores, kind))
        return
    networks = [("shipped", build_network(None)[0])]
    networks += [(Path(c).parent.name, checkpoint_network(c)[0]) for c in args.checkpoints]
    table = {}
    for name, network in networks:
        start = time.time()
        table[name] = validation_scores(network, args.per_cell, torch.device("cpu"))
        print(name, f"({time.time() - start:.0f} s)", json.dumps({k: round(v, 4) for k, v in table[name].items()}))
    print("\n".join(header()))
    for kind, label in (("enc", "encoder"), ("dec", "decoder"), ("int", "decoder, intervened rows")):
        for name, scores in table.items():
            print(row(f"{label}, {name}", scores, kind))


if __name__ == "__main__":
    main()
