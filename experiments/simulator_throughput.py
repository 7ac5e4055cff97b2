"""Simulator throughput next to the cost of one training step, on CPU.

Times ``condfip.simulate.simulate_batch`` (paper-in prior, float64) at one training shape and one encoder-phase
training step of the default model (``TrainConfig().model``) on a batch of the same shape, then prints a small
markdown table with the generation time as a share of one step. Medians over ``--repeats`` runs after a warm-up.

    python experiments/simulator_throughput.py [--nodes 20] [--samples 400] [--batch 8] [--mechanism rff]
                                           [--encoder-layers 3] [--cpu-bf16]

``--encoder-layers`` times a deeper encoder (a grown warm start, ``condfip.pretrained.grow_state``);
``--cpu-bf16`` the step under bf16 autocast (``TrainConfig.cpu_bf16``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from condfip.model import CondFiP, ModelConfig
from condfip.simulate import get_prior, simulate_batch, streams
from condfip.train import TrainConfig, phase_loss


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn(-1)
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mechanism", default="rff")
    parser.add_argument("--preset", default="paper-in")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--encoder-layers", type=int, default=ModelConfig().encoder_layers)
    parser.add_argument("--cpu-bf16", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prior = get_prior(args.preset)
    d, n, B = args.nodes, args.samples, args.batch

    def generate(k: int):
        rng, gen = streams(12345, k + 1)
        return simulate_batch(prior, B, d, n, mechanism=args.mechanism, rng=rng, gen=gen)

    gen_s = median_seconds(generate, args.repeats)

    cfg = TrainConfig(model=ModelConfig(encoder_layers=args.encoder_layers))
    torch.manual_seed(0)
    model = CondFiP(cfg.model).train()
    optimizer = torch.optim.AdamW(model.encoder.parameters(), lr=cfg.lr, betas=cfg.betas,
                                  weight_decay=cfg.weight_decay)
    sim = generate(0)
    batch = {k: getattr(sim, k).float() for k in ("x", "f", "noise")}
    batch["adj"], batch["n_context"] = sim.adj, n

    def forward_backward(_: int):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.cpu_bf16):
            loss = phase_loss(model, batch, encoder_phase=True)
        loss.backward()
        return loss

    def full_step(k: int):
        forward_backward(k)
        torch.nn.utils.clip_grad_norm_(model.encoder.parameters(), cfg.grad_clip)
        optimizer.step()

    fb_s = median_seconds(forward_backward, args.repeats)
    step_s = median_seconds(full_step, args.repeats)

    print(f"shape: B={B} datasets, d={d}, n={n}, {args.mechanism}, {args.preset} prior, float64 generation; "
          f"model {cfg.model}, bf16 autocast {args.cpu_bf16}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"median of {args.repeats}\n")
    print("| quantity | value |")
    print("|---|---|")
    print(f"| generation time per batch of {B} | {gen_s * 1e3:.1f} ms |")
    print(f"| datasets / s | {B / gen_s:.1f} |")
    print(f"| encoder step: forward + backward | {fb_s * 1e3:.1f} ms |")
    print(f"| encoder step: forward + backward + clip + AdamW | {step_s * 1e3:.1f} ms |")
    print(f"| generation as % of one full step | {100 * gen_s / step_s:.1f} % |")


if __name__ == "__main__":
    main()
