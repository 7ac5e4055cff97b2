"""Experiment: a head that predicts f_i(s) for held-out rows s without seeing x_i(s), on top of a frozen encoder.

    python experiments/query_head_experiment.py train --out runs/qhead [--weights FOLDER] [--steps 1000]
    python experiments/query_head_experiment.py evaluate --out runs/qhead [--per-cell 9]

Why: the encoder head sees the row's own value x_i and, on nodes with many parents, mostly returns it (slope of
abducted on true noise ~0.2 on nodes with 4+ parents; docs/training-log.md). This head cannot copy. The frozen
encoder runs over context + held-out rows with ``appended_rows_mask`` (context rows never see held-out rows);
for a held-out row s and node i, a query token starts from a learned vector and, per block, attends to the
parents' encoder embeddings at row s (DAG mask: a parent's embedding carries only its ancestors, never x_i(s))
and to node i's embeddings on the context rows, then an MLP; a head reads f_i(s). Trained on the training
prior's batches (the decoder phase's held-out rows); evaluated on the validation suite's P_IN / P_OUT cells
(validation seed) beside the encoder head, overall and on P_IN LIN d = 10 by number of parents.
Not part of the package: if it measures better it becomes part of the model (docs/training-log.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from condfip.atomic import atomic_write
from condfip.metrics import nodes_with_parents, parent_group, rmse_per_sample
from condfip.model import MLP, appended_rows_mask, dag_attention, parents_mask
from condfip.pretrained import build_network
from condfip.simulate import get_prior, simulate
from condfip.train import VALIDATION_CELLS, VALIDATION_SEED, TrainConfig, training_batch, validation_dataset


class CrossBlock(nn.Module):
    """Query tokens g (B, d, m, h) attend to parents' embeddings at their own row, then to their node's context
    embeddings, then an MLP; pre-LN residual."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_node, self.ln_sample, self.ln_mlp = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.ln_keys = nn.LayerNorm(width)
        self.q_node, self.kv_node, self.out_node = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)
        self.q_sample, self.kv_sample = nn.Linear(width, width), nn.Linear(width, 2 * width)
        self.out_sample = nn.Linear(width, width)
        self.mlp = MLP(width, 2)

    def forward(self, g, rows_hidden, context_hidden, allowed):
        """g (B, d, m, h); rows_hidden (B, d, m, h): the encoder's embeddings of the held-out rows;
        context_hidden (B, d, n, h); allowed (B, d, d) parents mask."""
        B, d, m, h = g.shape
        e = h // self.heads
        q = self.q_node(self.ln_node(g)).view(B, d, m, self.heads, e).permute(0, 2, 3, 1, 4)  # (B, m, H, d, e)
        k, v = self.kv_node(self.ln_keys(rows_hidden)).view(B, d, m, 2, self.heads, e).permute(3, 0, 2, 4, 1, 5)
        a = dag_attention(q, k, v, allowed[:, None, None])  # (B, m, H, d, e)
        g = g + self.out_node(a.permute(0, 3, 1, 2, 4).reshape(B, d, m, h))
        q = self.q_sample(self.ln_sample(g)).view(B, d, m, self.heads, e).transpose(2, 3)  # (B, d, H, m, e)
        n = context_hidden.shape[2]
        k, v = self.kv_sample(self.ln_keys(context_hidden)).view(B, d, n, 2, self.heads, e).permute(3, 0, 1, 4, 2, 5)
        a = F.scaled_dot_product_attention(q, k, v)  # (B, d, H, m, e)
        g = g + self.out_sample(a.transpose(2, 3).reshape(B, d, m, h))
        return g + self.mlp(self.ln_mlp(g))


class QueryHead(nn.Module):
    def __init__(self, width: int, heads: int, layers: int = 2):
        super().__init__()
        self.start = nn.Parameter(torch.randn(width) / math.sqrt(width))
        self.blocks = nn.ModuleList(CrossBlock(width, heads) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(width), MLP(width, 2), nn.Linear(width, 1))

    def forward(self, hidden: torch.Tensor, n_context: int, adj: torch.Tensor) -> torch.Tensor:
        """hidden (B, d, n_context + m, h) from the masked encoder pass -> f for the m held-out rows (B, m, d)."""
        context_hidden, rows_hidden = hidden[:, :, :n_context], hidden[:, :, n_context:]
        g = self.start.expand_as(rows_hidden)
        allowed = parents_mask(adj)
        for block in self.blocks:
            g = block(g, rows_hidden, context_hidden, allowed)
        return self.head(g).squeeze(-1).transpose(1, 2)


def encode(network, x: torch.Tensor, n_context: int, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return network.encoder(x, adj, appended_rows_mask(n_context, x.shape[1]))


def train(args) -> None:
    torch.manual_seed(0)
    network, _ = build_network(args.weights)
    head = QueryHead(network.config.width, network.config.heads, args.layers)
    cfg = TrainConfig(prior="train-dense", seed=args.seed, encoder_steps=0, decoder_steps=args.steps,
                      query_rows=args.query_rows)
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start, losses = time.time(), []
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = training_batch(cfg, step, [0], torch.device("cpu"))
        n = batch["n_context"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden, _ = encode(network, batch["x"], n, batch["adj"])
            f_hat = head(hidden, n, batch["adj"])
        loss = (f_hat.float() - batch["f"][:, n:]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{args.steps} loss {np.mean(losses[-50:]):.4f} "
                  f"{(step + 1) * cfg.batch_size / (time.time() - start):.1f} datasets/s", flush=True)
            state = {"head": head.state_dict(), "step": step + 1, "layers": args.layers, "weights": args.weights}
            atomic_write(out / "query_head.pt", lambda tmp, state=state: torch.save(state, tmp))


@torch.no_grad()
def evaluate(args) -> None:
    state = torch.load(Path(args.out) / "query_head.pt", weights_only=False)
    network, _ = build_network(state["weights"])
    head = QueryHead(network.config.width, network.config.heads, state["layers"])
    head.load_state_dict(state["head"])
    head.eval()
    print(f"query head after {state['step']} steps")
    table = {}
    for preset, mechanism, d in VALIDATION_CELLS:
        scores = {"encoder head": [], "query head": []}
        for k in range(args.per_cell):
            ds = validation_dataset(preset, mechanism, d, k)
            x, adj = ds.scm.batch.x.float(), ds.scm.batch.adj
            truth, scored = ds.scm.batch.noise[0, 400:].numpy(), nodes_with_parents(adj[0].numpy())
            f_joint = network.encoder(x, adj)[1][:, 400:]
            hidden, _ = encode(network, x, 400, adj)
            f_query = head(hidden, 400, adj)
            for name, f in (("encoder head", f_joint), ("query head", f_query)):
                scores[name].append(rmse_per_sample(truth, (x[:, 400:] - f)[0].numpy(), scored))
        table[f"{preset}/{mechanism}/d{d}"] = {k: float(np.mean(v)) for k, v in scores.items()}
        print(f"{preset}/{mechanism}/d{d}", json.dumps({k: round(v, 4) for k, v in table[f"{preset}/{mechanism}/d{d}"].items()}),
              flush=True)
    for name in ("encoder head", "query head"):
        print(f"mean {name}: {np.mean([v[name] for v in table.values()]):.4f}")
    pooled = {}
    for k in range(9):
        ds = simulate(get_prior("paper-in"), nodes=10, samples=800, seed=VALIDATION_SEED, index=k, mechanism="linear")
        x, adj = ds.scm.batch.x.float(), ds.scm.batch.adj
        truth = ds.scm.batch.noise[0, 400:].numpy()
        parents = adj[0].numpy().sum(0)
        estimates = {"encoder head": (x[:, 400:] - network.encoder(x, adj)[1][:, 400:])[0].numpy(),
                     "query head": (x[:, 400:] - head(encode(network, x, 400, adj)[0], 400, adj))[0].numpy()}
        for i in np.nonzero(parents)[0]:
            group = parent_group(parents[i])
            for name, est in estimates.items():
                slope = np.polyfit(truth[:, i], est[:, i], 1)[0]
                pooled.setdefault((name, group), []).append((slope, np.sqrt(np.mean((est[:, i] - truth[:, i]) ** 2))))
    for (name, group), values in sorted(pooled.items()):
        slopes, errors = np.array(values).T
        print(f"P_IN LIN d10 {name} {group:>3} parents: {len(values)} nodes, median slope {np.median(slopes):.2f}, "
              f"mean rmse {errors.mean():.3f} (standardised units)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["train", "evaluate"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--query-rows", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--per-cell", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(2)
    train(args) if args.command == "train" else evaluate(args)


if __name__ == "__main__":
    main()
