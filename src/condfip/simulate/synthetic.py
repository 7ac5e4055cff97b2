"""One synthetic dataset with its ground-truth SCM, in the standardised units of the finished dataset."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import torch

from condfip.scm import SCM
from condfip.simulate.generate import SimulatedBatch, permute_nodes, run_scms, simulate_batch
from condfip.simulate.noise import standard_noise
from condfip.simulate.prior import Prior


def streams(*keys: int, device: str | torch.device = "cpu") -> tuple[np.random.Generator, torch.Generator]:
    """Independent numpy and torch random streams named by integer keys, e.g. (seed, dataset index)."""
    sequence = np.random.SeedSequence([int(k) for k in keys])
    torch_seed = int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    return np.random.default_rng(sequence), torch.Generator(device=device).manual_seed(torch_seed)


class SyntheticSCM(SCM):
    """Ground truth of one simulated dataset. Its units are those of the standardised data it produced."""

    def __init__(self, batch: SimulatedBatch, columns: list[str]):
        if batch.x.shape[0] != 1:
            raise ValueError("a SyntheticSCM wraps a batch of one dataset")
        self.batch = batch
        adj = batch.adj[0].cpu().numpy()
        graph = nx.DiGraph()
        graph.add_nodes_from(columns)
        graph.add_edges_from((columns[j], columns[i]) for j, i in zip(*np.nonzero(adj)))
        super().__init__(graph, columns, default_n=batch.x.shape[1])
        self._perm = batch.perm
        self._inverse = torch.argsort(batch.perm, dim=1)
        self._mean, self._std = batch.mean[0].cpu().numpy(), batch.std[0].cpu().numpy()

    @property
    def heteroscedastic(self) -> bool:
        return self.batch.scms.heteroscedastic is not None

    # user (standardised, user column order) <-> raw (canonical order) units
    def _to_raw(self, x: np.ndarray) -> torch.Tensor:
        raw = torch.as_tensor(self._mean + self._std * x, dtype=torch.float64, device=self._perm.device)[None]
        return permute_nodes(raw, self._inverse)

    def _to_user(self, raw: torch.Tensor, *, shift: bool = True) -> np.ndarray:
        user = permute_nodes(raw, self._perm)[0].cpu().numpy()
        return (user - self._mean) / self._std if shift else user / self._std

    def mechanism_array(self, x: np.ndarray) -> np.ndarray:
        return self._to_user(self.batch.scms.mechanisms(self._to_raw(x)))

    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Noise of fresh observational rows (for heteroscedastic noise it depends on the drawn parents)."""
        return self._generate(n, rng, interventions={})[1]

    def sample(self, n: int | None = None, *, noise=None, seed: int | None = None) -> pd.DataFrame:
        """With ``noise=None``: the SCM's own generative process, node by node (exact, heteroscedastic
        noise included); with noise: the shared fixed-point solver."""
        if noise is not None:
            return super().sample(n, noise=noise, seed=seed)
        n = self.default_n if n is None else n
        x, _ = self._generate(int(n), np.random.default_rng(seed), self.interventions)
        return self._frame(x, None)

    def _generate(self, n: int, rng: np.random.Generator, interventions) -> tuple[np.ndarray, np.ndarray]:
        gen = torch.Generator(device=self._perm.device).manual_seed(int(rng.integers(2**62)))
        scms = self.batch.scms
        eps = standard_noise(scms.noise_families, (1, n, scms.d), gen, device=self._perm.device)
        raw_interventions = {}
        for name, value in interventions.items():
            k = self.columns.index(name)
            mean, std = float(self._mean[k]), float(self._std[k])
            if callable(value):
                def raw_fn(t, fn=value, mean=mean, std=std):
                    user = np.asarray(fn(((t - mean) / std).cpu().numpy()), dtype=np.float64)
                    return torch.as_tensor(mean + std * user, dtype=t.dtype, device=t.device).reshape(t.shape)
                raw_interventions[int(self._perm[0, k])] = raw_fn
            else:
                raw_interventions[int(self._perm[0, k])] = mean + std * float(value)
        x, noise, _ = run_scms(scms, eps, interventions=raw_interventions)
        return self._to_user(x), self._to_user(noise, shift=False)


@dataclass
class SimulatedDataset:
    """A simulated dataset: standardised ``data`` and ``noise`` (data = f(data) + noise) and its SCM."""

    scm: SyntheticSCM
    data: pd.DataFrame
    noise: pd.DataFrame
    mechanism: str
    rescaled_fraction: float


def simulate(prior: Prior, *, nodes: int, samples: int, seed: int, index: int = 0, mechanism: str | None = None,
             graphs: tuple[str, ...] | None = None, noises: tuple[str, ...] | None = None,
             device: str | torch.device = "cpu") -> SimulatedDataset:
    """Simulate one dataset (stream ``index`` of ``seed``) from ``prior``; columns are named X0..X{d-1}."""
    rng, gen = streams(seed, index, device=device)
    if mechanism is None:
        weights = np.asarray(prior.mechanism_weights or [1.0] * len(prior.mechanisms), dtype=float)
        mechanism = str(rng.choice(prior.mechanisms, p=weights / weights.sum()))
    batch = simulate_batch(prior, 1, nodes, samples, mechanism=mechanism, rng=rng, gen=gen, device=device,
                           graphs=graphs, noises=noises)
    columns = [f"X{k}" for k in range(nodes)]
    scm = SyntheticSCM(batch, columns)
    return SimulatedDataset(
        scm=scm,
        data=pd.DataFrame(batch.x[0].cpu().numpy(), columns=columns),
        noise=pd.DataFrame(batch.noise[0].cpu().numpy(), columns=columns),
        mechanism=mechanism,
        rescaled_fraction=batch.rescaled_fraction,
    )
