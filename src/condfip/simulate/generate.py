"""Drawing batches of synthetic SCMs and running them: the simulator's engine.

A batch holds B SCMs over the same number of nodes d and one mechanism family (graphs, noise families
and all parameters differ per SCM). Nodes are generated in a canonical topological order 0..d-1, one
vectorised step per node (no loop over rows), in float64; the finished dataset is then standardised per
node and its columns shuffled by a random permutation, so users see a random topological order.

Degenerate draws: a node whose noise spread is under ``prior.min_noise_fraction`` of its total spread is
almost deterministic (scales compound along paths with weights of 1-3). Such a node's mechanism is
rescaled by a gain (a parameter of the SCM) so that the noise fraction is exactly the minimum; the share of
rescaled nodes is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from condfip.simulate.graphs import sample_dag
from condfip.simulate.mechanisms import MECHANISM_FAMILIES, heteroscedastic_draw, heteroscedastic_scale
from condfip.simulate.noise import standard_noise
from condfip.simulate.prior import Prior

RawIntervention = float | Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SCMBatch:
    """Parameters of B SCMs over d nodes in canonical topological order (``adj[b, j, i]``: j -> i)."""

    adj: torch.Tensor  # (B, d, d) bool, strictly upper triangular
    mechanism: str
    params: dict[str, torch.Tensor]
    noise_families: list[str]
    noise_scale: torch.Tensor  # (B, d)
    gain: torch.Tensor  # (B, d), 1 unless the node was rescaled
    heteroscedastic: dict[str, torch.Tensor] | None

    @property
    def d(self) -> int:
        return self.adj.shape[1]

    def node_mechanism(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """f_i on rows x (B, n, d) in raw units."""
        return self.gain[:, i, None] * MECHANISM_FAMILIES[self.mechanism].node(self.params, x, i)

    def mechanisms(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) for all nodes, (B, n, d) in raw units."""
        return torch.stack([self.node_mechanism(x, i) for i in range(self.d)], dim=-1)

    def node_noise_scale(self, x: torch.Tensor, i: int) -> torch.Tensor:
        scale = self.noise_scale[:, i, None]
        if self.heteroscedastic is not None:
            scale = scale * heteroscedastic_scale(self.heteroscedastic, x, i)
        return scale


def draw_scms(prior: Prior, batch_size: int, d: int, mechanism: str, *, rng: np.random.Generator,
              gen: torch.Generator, device: str | torch.device = "cpu",
              graphs: tuple[str, ...] | None = None, noises: tuple[str, ...] | None = None) -> SCMBatch:
    """Draw B SCMs of one mechanism family from ``prior`` (graphs and noises may be narrowed)."""
    graphs = graphs or prior.graphs
    noises = noises or prior.noises
    adjs = [
        sample_dag(str(rng.choice(graphs)), d, float(rng.uniform(*prior.edges_per_node)), rng)
        for _ in range(batch_size)
    ]
    adj = torch.as_tensor(np.stack(adjs), device=device)
    like = torch.empty(0, dtype=torch.float64, device=device)
    lo, hi = prior.noise_scale
    return SCMBatch(
        adj=adj,
        mechanism=mechanism,
        params=MECHANISM_FAMILIES[mechanism].draw(adj, prior, gen),
        noise_families=[str(rng.choice(noises)) for _ in range(batch_size)],
        noise_scale=lo + (hi - lo) * torch.rand((batch_size, d), generator=gen, dtype=like.dtype, device=device),
        gain=torch.ones((batch_size, d), dtype=like.dtype, device=device),
        heteroscedastic=heteroscedastic_draw(adj, gen) if prior.heteroscedastic else None,
    )


def run_scms(scms: SCMBatch, eps: torch.Tensor, *, interventions: dict[int, RawIntervention] | None = None,
             additive_noise: torch.Tensor | None = None,
             min_noise_fraction: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate rows node by node in topological order; returns raw ``(x, noise, f)``, each (B, n, d).

    ``eps``: unit-variance noise (B, n, d), scaled by the SCM's noise scale; or ``additive_noise``: the
    additive noise itself (then ``eps`` is ignored). ``interventions``: {canonical node: raw value, or a
    callable on the raw pre-intervention value}. ``min_noise_fraction``: calibrate the gains (first draw).
    """
    base = additive_noise if additive_noise is not None else eps
    x = torch.zeros_like(base)
    noise = torch.zeros_like(base)
    f = torch.zeros_like(base)
    interventions = interventions or {}
    for i in range(scms.d):
        fi = scms.node_mechanism(x, i)
        ni = additive_noise[..., i] if additive_noise is not None else scms.node_noise_scale(x, i) * eps[..., i]
        if min_noise_fraction:
            fi = fi * _calibrate_gain(scms, i, fi, ni, min_noise_fraction)[:, None]
        xi = fi + ni
        if i in interventions:
            value = interventions[i]
            xi = value(xi) if callable(value) else torch.full_like(xi, float(value))
        x[..., i], noise[..., i], f[..., i] = xi, ni, fi
    return x, noise, f


def _calibrate_gain(scms: SCMBatch, i: int, fi: torch.Tensor, ni: torch.Tensor, fraction: float) -> torch.Tensor:
    """Gain g of node i's mechanism so that std(n) / std(g f + n) >= fraction on this sample: where it is
    below, g is the positive root of g^2 var_f + 2 g cov(f, n) + var_n = var_n / fraction^2."""
    fc, nc = fi - fi.mean(dim=1, keepdim=True), ni - ni.mean(dim=1, keepdim=True)
    var_f, var_n, cov = fc.pow(2).mean(dim=1), nc.pow(2).mean(dim=1), (fc * nc).mean(dim=1)
    too_small = var_n < fraction**2 * (fc + nc).pow(2).mean(dim=1)
    a, b, c = var_f.clamp(min=1e-300), 2 * cov, var_n - var_n / fraction**2
    root = (-b + torch.sqrt(b * b - 4 * a * c)) / (2 * a)
    gain = torch.where(too_small, root, torch.ones_like(var_f))
    scms.gain[:, i] *= gain
    return gain


@dataclass
class SimulatedBatch:
    """B standardised datasets with their ground truth, columns in a random topological order per dataset."""

    scms: SCMBatch
    perm: torch.Tensor  # (B, d): user column k is canonical node perm[b, k]
    mean: torch.Tensor  # (B, d) raw mean per user column
    std: torch.Tensor  # (B, d) raw std per user column
    x: torch.Tensor  # (B, n, d) standardised data
    noise: torch.Tensor  # (B, n, d) standardised noise, x = f + noise
    f: torch.Tensor  # (B, n, d) standardised f(x)
    adj: torch.Tensor  # (B, d, d) bool adjacency over user columns
    rescaled_fraction: float  # share of nodes whose mechanism was rescaled (degenerate draws)


def permute_nodes(t: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Reorder the last axis of (B, n, d) by perm (B, d)."""
    return torch.gather(t, -1, perm[:, None, :].expand(t.shape[0], t.shape[1], -1))


def simulate_batch(prior: Prior, batch_size: int, d: int, n: int, *, mechanism: str, rng: np.random.Generator,
                   gen: torch.Generator, device: str | torch.device = "cpu",
                   graphs: tuple[str, ...] | None = None, noises: tuple[str, ...] | None = None) -> SimulatedBatch:
    """Draw B SCMs and n rows from each; standardise each finished dataset per node."""
    scms = draw_scms(prior, batch_size, d, mechanism, rng=rng, gen=gen, device=device, graphs=graphs, noises=noises)
    eps = standard_noise(scms.noise_families, (batch_size, n, d), gen, device=device)
    x, noise, f = run_scms(scms, eps, min_noise_fraction=prior.min_noise_fraction)
    rescaled = float((scms.gain != 1.0).to(torch.float64).mean())
    perm = torch.as_tensor(np.stack([rng.permutation(d) for _ in range(batch_size)]), device=device)
    x, noise, f = (permute_nodes(t, perm) for t in (x, noise, f))
    mean, std = x.mean(dim=1), x.std(dim=1).clamp(min=1e-12)
    rows = torch.arange(batch_size, device=device)[:, None, None]
    adj = scms.adj[rows, perm[:, :, None], perm[:, None, :]]
    return SimulatedBatch(
        scms=scms, perm=perm, mean=mean, std=std,
        x=(x - mean[:, None]) / std[:, None],
        noise=noise / std[:, None],
        f=(f - mean[:, None]) / std[:, None],
        adj=adj,
        rescaled_fraction=rescaled,
    )
