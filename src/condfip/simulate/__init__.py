"""The synthetic SCM simulator: graph models, mechanisms, noise families, presets and batched generation."""

from condfip.simulate.generate import SCMBatch, SimulatedBatch, draw_scms, run_scms, simulate_batch
from condfip.simulate.prior import GRAPHS, MECHANISMS, NOISES, PRESETS, Prior, get_prior
from condfip.simulate.synthetic import SimulatedDataset, SyntheticSCM, simulate, streams

__all__ = [
    "GRAPHS", "MECHANISMS", "NOISES", "PRESETS", "Prior", "SCMBatch", "SimulatedBatch", "SimulatedDataset",
    "SyntheticSCM", "draw_scms", "get_prior", "run_scms", "simulate", "simulate_batch", "streams",
]
