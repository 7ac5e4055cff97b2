"""Zero-mean, unit-variance noise families, drawn in torch for a batch of datasets (one family each).

The SCM multiplies these by a per-node scale (and, for the heteroscedastic variant, by a function of the
parents): only zero-mean noise makes standardised mechanisms identifiable.
"""

from __future__ import annotations

import math

import torch


def _gaussian(shape, gen, **kw):
    return torch.randn(shape, generator=gen, **kw)


def _laplace(shape, gen, **kw):
    e1 = -torch.log1p(-torch.rand(shape, generator=gen, **kw))
    e2 = -torch.log1p(-torch.rand(shape, generator=gen, **kw))
    return (e1 - e2) / math.sqrt(2.0)  # Laplace(0, b) has variance 2 b^2


def _uniform(shape, gen, **kw):
    return (torch.rand(shape, generator=gen, **kw) - 0.5) * math.sqrt(12.0)


def _student_t(shape, gen, **kw):
    """Student-t with an integer nu ~ U{3..10} per dataset (first axis), scaled to unit variance."""
    nu = torch.randint(3, 11, (shape[0],), generator=gen, device=kw.get("device")).to(kw["dtype"])
    z = torch.randn(shape, generator=gen, **kw)
    draws = torch.randn((10, *shape), generator=gen, **kw) ** 2
    keep = torch.arange(10, device=z.device).view(10, *([1] * len(shape))) < nu.view(1, -1, *([1] * (len(shape) - 1)))
    chi2 = (draws * keep).sum(0)
    nu_b = nu.view(-1, *([1] * (len(shape) - 1)))
    return z / torch.sqrt(chi2 / nu_b) / torch.sqrt(nu_b / (nu_b - 2.0))


def _mixture(shape, gen, **kw):
    """Symmetric two-component Gaussian mixture +-mu + N(0, 0.5^2), mu ~ U(1, 2) per dataset."""
    mu = 1.0 + torch.rand((shape[0],), generator=gen, **kw).view(-1, *([1] * (len(shape) - 1)))
    sign = torch.randint(0, 2, shape, generator=gen, device=kw.get("device")).to(kw["dtype"]) * 2.0 - 1.0
    z = sign * mu + 0.5 * torch.randn(shape, generator=gen, **kw)
    return z / torch.sqrt(mu**2 + 0.25)


NOISE_FAMILIES = {
    "gaussian": _gaussian,
    "laplace": _laplace,
    "uniform": _uniform,
    "student-t": _student_t,
    "mixture": _mixture,
}


def standard_noise(families: list[str], shape: tuple[int, ...], gen: torch.Generator,
                   dtype=torch.float64, device="cpu") -> torch.Tensor:
    """Zero-mean unit-variance noise of ``shape`` (batch first); dataset b uses ``families[b]``."""
    if len(families) != shape[0]:
        raise ValueError("one noise family per dataset")
    out = torch.empty(shape, dtype=dtype, device=device)
    for family in sorted(set(families)):
        if family not in NOISE_FAMILIES:
            raise ValueError(f"unknown noise family {family!r}; choose one of {sorted(NOISE_FAMILIES)}")
        rows = [b for b, f in enumerate(families) if f == family]
        out[rows] = NOISE_FAMILIES[family]((len(rows), *shape[1:]), gen, dtype=dtype, device=device)
    return out
