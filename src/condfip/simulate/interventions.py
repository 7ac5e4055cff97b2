"""Rows drawn from simulated SCMs under random interventions: where a decoder is used, not only where it is fitted.

The decoder T is asked for f(z) at rows z that interventions produce: a node set to a value, possibly beyond
everything the context shows, and its descendants moved with it. ``intervened_rows`` draws such rows from the
SCMs of a ``SimulatedBatch``: the rows are split into groups, each group intervenes on one node (a different
node per group), hard (a value uniform on the context's range widened by ``beyond`` SDs on each side) or shift
(the node's value plus a uniform offset of up to ``beyond`` SDs), chosen per row. The labels are the SCM's own
mechanisms at those rows, f(z), for every node, the intervened one included: T(z)_i must return f_i of the
parents whatever set the parents. Everything comes back in the finished dataset's standardised units and user
column order.
"""

from __future__ import annotations

import numpy as np
import torch

from condfip.simulate.generate import SimulatedBatch, permute_nodes, run_scms
from condfip.simulate.noise import standard_noise


def to_canonical(t: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """User column order -> canonical node order on the last axis of (B, ..., d): the inverse of
    ``permute_nodes`` (user column c holds canonical node perm[b, c])."""
    index = perm.view(perm.shape[0], *([1] * (t.dim() - 2)), perm.shape[1]).expand_as(t)
    return torch.empty_like(t).scatter_(-1, index, t)


def intervened_rows(sim: SimulatedBatch, rows: int, context: int, *, rng: np.random.Generator,
                    gen: torch.Generator, groups: int = 4, beyond: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` interventional rows from each SCM of ``sim``: standardised ``(x, f)``, each (B, rows, d). The
    context range is that of ``sim.x[:, :context]``."""
    scms, perm = sim.scms, sim.perm
    B, d = sim.x.shape[0], scms.d
    like = sim.x
    lo = to_canonical(sim.x[:, :context].amin(dim=1), perm)  # (B, d) standardised, canonical order
    hi = to_canonical(sim.x[:, :context].amax(dim=1), perm)
    mean, std = to_canonical(sim.mean, perm), to_canonical(sim.std, perm)  # raw units
    groups = max(1, min(groups, d, rows))
    nodes = rng.choice(d, size=groups, replace=False)
    bounds = np.linspace(0, rows, groups + 1).astype(int)
    interventions = {}
    for k, start, stop in zip(nodes.tolist(), bounds[:-1], bounds[1:]):
        m = int(stop - start)
        u = torch.rand((B, m), generator=gen, dtype=like.dtype, device=like.device)
        low, high = lo[:, k, None] - beyond, hi[:, k, None] + beyond
        hard_raw = mean[:, k, None] + std[:, k, None] * (low + (high - low) * u)
        shift_raw = std[:, k, None] * beyond * (2 * torch.rand((B, m), generator=gen, dtype=like.dtype,
                                                               device=like.device) - 1)
        hard = torch.rand((B, m), generator=gen, device=like.device) < 0.5

        def intervene(xi, start=int(start), stop=int(stop), hard=hard, hard_raw=hard_raw, shift_raw=shift_raw):
            out = xi.clone()
            out[:, start:stop] = torch.where(hard, hard_raw.to(xi.dtype), xi[:, start:stop] + shift_raw.to(xi.dtype))
            return out

        interventions[k] = intervene
    eps = standard_noise(scms.noise_families, (B, rows, d), gen, device=like.device)
    x, _, f = run_scms(scms, eps, interventions=interventions)
    x, f = permute_nodes(x, perm), permute_nodes(f, perm)
    return (x - sim.mean[:, None]) / sim.std[:, None], (f - sim.mean[:, None]) / sim.std[:, None]
