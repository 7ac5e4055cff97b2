"""Mechanism families f_i(x_pa(i)) for a batch of SCMs, in torch float64.

Each family has ``draw(adj, prior, gen) -> params`` (a dict of tensors with the batch first; ``adj[b, j, i]``
means j -> i in SCM b) and ``node(params, x, i) -> (B, n)``, the value of f_i on the rows ``x`` (B, n, d).
Parameters of non-edges are zero, so f_i sees its parents only. Mechanisms act on raw (unstandardised)
parent values, as in the paper.

- ``linear``: sum_j w_ji x_j + bias, |w| ~ U(prior.linear_weight) with a random sign (paper);
- ``rff``: random Fourier features of the parents, a GP-like draw (paper): sqrt(2) c w.cos(Omega x + b)/sqrt(F) + bias;
- ``mlp``: a random one-hidden-layer tanh network of the parents (not in the paper);
- ``additive``: per edge, a saturating + periodic + soft-quadratic term (not in the paper).
"""

from __future__ import annotations

import math

import torch

from condfip.simulate.prior import Prior


def _uniform(lo_hi, shape, gen, like: torch.Tensor) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=like.dtype, device=like.device)


def _normal(shape, gen, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=like.dtype, device=like.device)


def _signs(shape, gen, like: torch.Tensor) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=gen, device=like.device).to(like.dtype) * 2.0 - 1.0


def _parent_projection(k: int, scale: torch.Tensor, gen: torch.Generator, mask: torch.Tensor) -> torch.Tensor:
    """k standard-normal projections of each node's parents, divided by a per-node ``scale`` (B, d):
    (B, d, k, d), zero on the non-parents."""
    B, d, _ = mask.shape
    weights = _normal((B, d, k, d), gen, mask) / scale[:, :, None, None]
    return weights * mask.transpose(1, 2)[:, :, None, :]


class Linear:
    name = "linear"

    @staticmethod
    def draw(adj: torch.Tensor, prior: Prior, gen: torch.Generator) -> dict[str, torch.Tensor]:
        mask = adj.to(torch.float64)
        B, d, _ = adj.shape
        weight = _signs((B, d, d), gen, mask) * _uniform(prior.linear_weight, (B, d, d), gen, mask) * mask
        return {"weight": weight, "bias": _uniform(prior.bias, (B, d), gen, mask)}

    @staticmethod
    def node(p: dict[str, torch.Tensor], x: torch.Tensor, i: int) -> torch.Tensor:
        return torch.einsum("bnj,bj->bn", x, p["weight"][:, :, i]) + p["bias"][:, i, None]


class RandomFourierFeatures:
    name = "rff"

    @staticmethod
    def draw(adj: torch.Tensor, prior: Prior, gen: torch.Generator) -> dict[str, torch.Tensor]:
        mask = adj.to(torch.float64)
        B, d, _ = adj.shape
        F = prior.rff_features
        lengthscale = _uniform(prior.rff_lengthscale, (B, d), gen, mask)
        omega = _parent_projection(F, lengthscale, gen, mask)  # omega[b, i, f, j]: feature f of node i on parent j
        return {
            "omega": omega,
            "phase": _uniform((0.0, 2 * math.pi), (B, d, F), gen, mask),
            "weight": _normal((B, d, F), gen, mask),
            "amplitude": _uniform(prior.rff_amplitude, (B, d), gen, mask),
            "bias": _uniform(prior.bias, (B, d), gen, mask),
        }

    @staticmethod
    def node(p: dict[str, torch.Tensor], x: torch.Tensor, i: int) -> torch.Tensor:
        F = p["phase"].shape[-1]
        features = torch.cos(torch.einsum("bnj,bfj->bnf", x, p["omega"][:, i]) + p["phase"][:, i, None, :])
        value = torch.einsum("bnf,bf->bn", features, p["weight"][:, i])
        return math.sqrt(2.0) * p["amplitude"][:, i, None] * value / math.sqrt(F) + p["bias"][:, i, None]


class RandomMLP:
    name = "mlp"

    @staticmethod
    def draw(adj: torch.Tensor, prior: Prior, gen: torch.Generator) -> dict[str, torch.Tensor]:
        mask = adj.to(torch.float64)
        B, d, _ = adj.shape
        H = prior.mlp_hidden
        fan_in = mask.sum(1).clamp(min=1.0)  # parents per node, (B, d)
        w_in = _parent_projection(H, fan_in.sqrt(), gen, mask)
        amplitude = _uniform(prior.linear_weight, (B, d), gen, mask) * math.sqrt(2.0)
        return {
            "w_in": w_in,
            "b_in": _normal((B, d, H), gen, mask),
            "w_out": _normal((B, d, H), gen, mask) * amplitude[:, :, None] / math.sqrt(H),
            "bias": _uniform(prior.bias, (B, d), gen, mask),
        }

    @staticmethod
    def node(p: dict[str, torch.Tensor], x: torch.Tensor, i: int) -> torch.Tensor:
        hidden = torch.tanh(torch.einsum("bnj,bhj->bnh", x, p["w_in"][:, i]) + p["b_in"][:, i, None, :])
        return torch.einsum("bnh,bh->bn", hidden, p["w_out"][:, i]) + p["bias"][:, i, None]


class Additive:
    name = "additive"

    @staticmethod
    def draw(adj: torch.Tensor, prior: Prior, gen: torch.Generator) -> dict[str, torch.Tensor]:
        mask = adj.to(torch.float64)
        shape = adj.shape

        def coef(lo_hi):
            return _signs(shape, gen, mask) * _uniform(lo_hi, shape, gen, mask) * mask

        return {
            "saturating": coef((0.5, 2.0)),
            "slope": _uniform((0.5, 2.0), shape, gen, mask),
            "periodic": coef((0.5, 2.0)),
            "frequency": _uniform((0.5, 2.0), shape, gen, mask),
            "phase": _uniform((0.0, 2 * math.pi), shape, gen, mask),
            "quadratic": coef((0.1, 0.5)),
            "bias": _uniform(prior.bias, shape[:2], gen, mask),
        }

    @staticmethod
    def node(p: dict[str, torch.Tensor], x: torch.Tensor, i: int) -> torch.Tensor:
        def edge(name):
            return p[name][:, None, :, i]  # (B, 1, d): coefficient of parent j for node i

        terms = (
            edge("saturating") * torch.tanh(edge("slope") * x)
            + edge("periodic") * torch.sin(edge("frequency") * x + edge("phase"))
            + edge("quadratic") * x**2 / (1.0 + x**2 / 9.0)  # soft quadratic, saturates at |x| >> 3
        )
        return terms.sum(-1) + p["bias"][:, i, None]


MECHANISM_FAMILIES = {m.name: m for m in (Linear, RandomFourierFeatures, RandomMLP, Additive)}


def heteroscedastic_draw(adj: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Parameters of a noise-scale multiplier exp(0.5 cos(u.x_pa / 5 + phase)) in [0.61, 1.65]."""
    mask = adj.to(torch.float64)
    B, d, _ = adj.shape
    return {
        "direction": _normal((B, d, d), gen, mask) * mask / 5.0,
        "phase": _uniform((0.0, 2 * math.pi), (B, d), gen, mask),
    }


def heteroscedastic_scale(p: dict[str, torch.Tensor], x: torch.Tensor, i: int) -> torch.Tensor:
    return torch.exp(0.5 * torch.cos(torch.einsum("bnj,bj->bn", x, p["direction"][:, :, i]) + p["phase"][:, i, None]))
