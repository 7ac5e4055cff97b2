"""Wall time of real training steps (simulation, forward, backward, AdamW, EMA) for a run config, on CPU.

    python experiments/train_step_timing.py runs/grow2-config.json [--cpu-bf16] [--steps 20] [--seed 99]

Builds a ``Trainer`` from the config (random initial weights: speed does not depend on them), runs 3 untimed
steps, then times ``--steps`` steps of the config's mix of node counts and context sizes (the encoder phase).
Run it with the machine otherwise idle; compare settings with the same ``--seed`` (the same steps).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from condfip.train import TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--cpu-bf16", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()
    values = {**json.loads(args.config.read_text()), "cpu_bf16": args.cpu_bf16, "seed": args.seed,
              "eval_every": 10**9, "checkpoint_every": 10**9}
    cfg = TrainConfig.from_dict(values)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, device="cpu", quiet=True)
        for _ in range(3):
            trainer.train_step()
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step()
        seconds = time.perf_counter() - start
    print(f"{args.config} cpu_bf16={args.cpu_bf16}: {args.steps} steps in {seconds:.1f} s "
          f"({60 * args.steps / seconds:.1f} steps/min, {args.steps * cfg.batch_size / seconds:.1f} datasets/s)")


if __name__ == "__main__":
    main()
