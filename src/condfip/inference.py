"""Inference: a dataset and its DAG in, an SCM out: one forward pass of the network, plus (by default) a
closed-form kernel regression per node for generation.

``ZeroShotModel.infer`` standardises the context with its own statistics and runs the encoder and the decoder's
code blocks once (no optimiser). Noise abduction is the network's (the encoder head, or the decoder's
``x - T(x)``). Generation (samples, interventions, counterfactuals) runs through the mechanisms ``mechanisms``
names: ``"kernel"`` (default) fits each node's ``f_i`` on the context rows by kernel ridge regression in closed
form (``condfip.kernel_mechanisms``), a classical per-dataset step that the benchmark shows generates better
than the decoder; ``"network"`` uses the decoder's ``T`` in the user's units,
``f(x) = mean + std * T((x - mean) / std)``: the paper's regression-free, zero-shot answer (benchmarked as
``condfip-network``)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import torch

from condfip.errors import InputError
from condfip.inputs import read_data, read_graph, validate
from condfip.kernel_mechanisms import MECHANISMS, KernelMechanisms
from condfip.memory import ROW_CHUNK, check_memory
from condfip.model import CondFiP
from condfip.pretrained import _weights_paths, build_network
from condfip.saved import read_scm
from condfip.scm import SCM, ancestral_columns, draw_from_pool

ABDUCTIONS = ("auto", "decoder", "encoder")
DEFAULT_ABDUCTION = "auto"  # measured best on noise (docs/training-log.md, "auto abduction")
NOISE_MODELS = ("empirical", "gaussian")
DEFAULT_MECHANISMS = "kernel"  # measured better on generation (README, Results; docs/training-log.md)


class InferredSCM(SCM):
    """An SCM inferred from a context dataset (see the module docstring). All methods take and return the
    user's units.

    ``abduction``: how ``noise(data)`` abducts: ``"decoder"`` (x - T(x); exact round trip with ``sample``),
    ``"encoder"`` (x - encoder head, with the rows appended to the context) or ``"auto"`` (the default): with
    kernel mechanisms, each root and each node whose regression is a line the context leaves no doubt about
    (``KernelMechanisms.certain``) gets ``x - f(x)`` from its regression, the other nodes the network's
    abduction the model card names (the encoder head); the network runs only if some node needs it. With
    network mechanisms ``"auto"`` is the card's abduction. Counterfactuals always abduct with the decoder (see
    ``counterfactual``).
    ``noise_model``: how fresh noise is drawn: ``"empirical"`` (resample each node's marginal of the
    context's decoder-abducted noise by its inverse CDF) or ``"gaussian"`` (a per-node Gaussian fitted to it).
    ``mechanisms``: what generation runs through: ``"kernel"`` (default: per-node kernel ridge regressions
    fitted in closed form on the context, ``condfip.kernel_mechanisms``) or ``"network"`` (the decoder's T).
    "The decoder" below means whichever of the two generates.
    ``graph_source``: ``"given"``, or how ``infer(data, graph=None)`` discovered the graph.
    """

    graph_source = "given"

    def __init__(self, network: CondFiP, card: dict, context: pd.DataFrame, graph: nx.DiGraph,
                 abduction: str = "decoder", noise_model: str = "empirical", default_n: int | None = None,
                 mechanisms: str = DEFAULT_MECHANISMS):
        super().__init__(graph, list(context.columns), default_n=default_n or len(context))
        if abduction not in ABDUCTIONS:
            raise InputError(f"abduction must be one of {ABDUCTIONS}, got {abduction!r}")
        if noise_model not in NOISE_MODELS:
            raise InputError(f"noise_model must be one of {NOISE_MODELS}, got {noise_model!r}")
        if mechanisms not in MECHANISMS:
            raise InputError(f"mechanisms must be one of {MECHANISMS}, got {mechanisms!r}")
        self.network, self.card = network, card
        self.context = context
        self.abduction, self.noise_model, self.mechanisms = abduction, noise_model, mechanisms
        self.mean = context.to_numpy().mean(axis=0)
        self.std = context.to_numpy().std(axis=0, ddof=1)
        adj = nx.to_numpy_array(self._graph, nodelist=self.columns) != 0
        self.adj = torch.as_tensor(adj)[None]
        with torch.no_grad():
            standardised = self._standardised(context.to_numpy())
            hidden, f_hat = network.encoder(standardised, self.adj)
            self.code = network.decoder.dataset_code(hidden, self.adj, standardised)
        # the encoder head's RMSE per node on the context rows (standardised units), from this same pass:
        # abduction "auto" checks the kernel's lines against it (KernelMechanisms.certain)
        residual = (context.to_numpy() - self.mean) / self.std - f_hat[0].double().numpy()
        self.context_encoder_rmse = np.sqrt(np.mean(residual ** 2, axis=0))
        self._context_noise: np.ndarray | None = None
        self._memory: tuple | None = None
        self._kernel: dict = {}  # shared by the copies .do() makes, so the regressions are fitted once

    @property
    def memory(self):
        """The decoder's context memory (``FixedPointDecoder.context_memory``; None without
        ``decoder_context``): a function of the code only, computed once per code and reused by every pass."""
        if self._memory is None or self._memory[0] is not self.code:
            with torch.no_grad():
                self._memory = (self.code, self.network.decoder.context_memory(self.code, self.adj))
        return self._memory[1]

    @property
    def kernel(self) -> KernelMechanisms | None:
        """The kernel regressions (``mechanisms="kernel"``; None otherwise), fitted on the standardised context on
        first use (once: the copies ``.do()`` makes share them)."""
        if self.mechanisms != "kernel":
            return None
        if "fit" not in self._kernel:
            x = self.context.to_numpy(dtype=np.float64)
            self._kernel["fit"] = KernelMechanisms((x - self.mean) / self.std, self.adj[0].numpy(),
                                                   workers=torch.get_num_threads())
        return self._kernel["fit"]

    # ---- units --------------------------------------------------------------------------------------
    def _standardised(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)[None]

    # ---- the SCM interface --------------------------------------------------------------------------
    def value_range(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The context's smallest and largest value and standard deviation per column (requests beyond warn)."""
        x = self.context.to_numpy()
        return x.min(axis=0), x.max(axis=0), self.std

    def mechanism_array(self, x: np.ndarray) -> np.ndarray:
        """T(x) generation by generation: the same calls the fixed point makes, so that
        ``sample(noise=noise(x))`` returns x to float64 rounding."""
        return self.mechanism_by_generation(x)

    @torch.no_grad()
    def _decoder_standardised(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """The network decoder's T(z) for ``nodes`` on rows x (user's units in, standardised units out)."""
        out = np.empty((len(x), len(nodes)), dtype=np.float64)
        index = torch.as_tensor(nodes)
        for start in range(0, len(x), ROW_CHUNK):
            z = self._standardised(x[start:start + ROW_CHUNK])
            out[start:start + ROW_CHUNK] = self.network.decoder(self.code, z, self.adj, nodes=index,
                                                                memory=self.memory)[0].double().numpy()
        return out

    def mechanism_nodes_array(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        if self.mechanisms == "kernel":
            out = self.kernel.predict((x - self.mean) / self.std, nodes)
        else:
            out = self._decoder_standardised(x, nodes)
        return self.mean[nodes] + self.std[nodes] * out

    def noise(self, data) -> pd.DataFrame:
        abduction = self.abduction
        if abduction == "auto":
            abduction = self.card.get("default_abduction", "decoder")
            if self.kernel is not None and abduction == "encoder":
                x, index = self._as_array(data, "data")
                certain = self.kernel.certain(len(self.columns), rival_rmse=self.context_encoder_rmse)
                out = np.empty_like(x, dtype=np.float64)
                nodes = np.flatnonzero(certain)
                out[:, nodes] = x[:, nodes] - self.mechanism_nodes_array(x, nodes)
                if not certain.all():
                    rest = np.flatnonzero(~certain)
                    out[:, rest] = x[:, rest] - self.encoder_mechanism_array(x, rest)
                return self._frame(out, index)
        if abduction == "decoder":
            return super().noise(data)
        x, index = self._as_array(data, "data")
        return self._frame(x - self.encoder_mechanism_array(x), index)

    def counterfactual(self, data, interventions) -> pd.DataFrame:
        """Counterfactual rows: abduct each factual row's noise with the decoder, ``x - T(x)``, whatever
        ``abduction`` says, and replay it under ``interventions`` through the same T. Abduction and replay
        then use one set of mechanisms: a node the intervention does not reach gets its factual value back
        exactly, and T's errors partly cancel between the two steps (on the validation suite this beats
        encoder-head abduction for counterfactuals; README, docs/training-log.md)."""
        return self.do(interventions).sample(noise=super().noise(data))

    @torch.no_grad()
    def encoder_mechanism_array(self, x: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray:
        """The encoder head's f(x) for rows x, each chunk of rows appended to the context: (rows, d), or
        (rows, len(nodes)) for ``nodes`` (column indices). For ``nodes`` the pass runs on those nodes and their
        ancestors only: the encoder's attention across nodes sees parents only and its attention across
        samples stays within a node, so a node's head output is a function of its ancestors' tokens, and the
        smaller pass gives the same values to float rounding (tests/test_inference.py) at a fraction of the
        cost when few nodes need it."""
        sub = np.arange(len(self.columns)) if nodes is None else self._with_ancestors(nodes)
        ctx = self._standardised(self.context.to_numpy())[:, :, sub]
        adj = self.adj[:, sub][:, :, sub]
        chunk = max(1, len(self.context))
        f = np.empty((len(x), len(sub)), dtype=np.float64)
        for start in range(0, len(x), chunk):
            rows = self._standardised(x[start:start + chunk])[:, :, sub]
            _, f_hat = self.network.encoder(torch.cat([ctx, rows], dim=1), adj)
            f[start:start + chunk] = f_hat[0, ctx.shape[1]:].double().numpy()
        if nodes is None:
            return self.mean + self.std * f
        nodes = np.asarray(nodes)
        return self.mean[nodes] + self.std[nodes] * f[:, np.searchsorted(sub, nodes)]

    def _with_ancestors(self, nodes: np.ndarray) -> np.ndarray:
        """The sorted column indices of ``nodes`` (indices) and all their ancestors."""
        return ancestral_columns(self, [self.columns[int(i)] for i in nodes])

    def context_noise(self) -> np.ndarray:
        """The context rows' noise as the decoder abducts it, ``x - T(x)``: the pool fresh noise is drawn from.
        Always the decoder's, whatever ``abduction`` says, because generation runs through the decoder's fixed
        point: with this pool, pushing the context's own noise back reproduces the context exactly."""
        if self._context_noise is None:
            x = self.context.to_numpy()
            self._context_noise = x - self.mechanism_array(x)
        return self._context_noise

    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return draw_from_pool(self.context_noise(), n, rng, self.noise_model)

    # ---- beyond the SCM interface (thin: the code lives in effects, report, saved, interop_dowhy) ----
    def effect(self, target: str, interventions, reference=None, *, n: int = 1000, bootstrap: int = 50,
               seed: int | None = 0, level: float = 0.95, method: str | None = None, progress=None):
        """Average causal effect ``E[target | do(interventions)] - E[target | do(reference)]`` (reference
        None: no intervention) with an interval: a bootstrap over the context rows (each replicate re-infers
        the SCM from resampled rows, in batches) plus the model's error as calibrated on simulated SCMs
        (shipped weights and default mechanisms). See :func:`condfip.effects.average_effect`."""
        from condfip.effects import average_effect

        return average_effect(self, target, interventions, reference, n=n, bootstrap=bootstrap, seed=seed,
                              level=level, method=method, progress=progress)

    def report(self, data=None):
        """Trust signals per node (R^2, noise-parent dependence, training-range warnings) on the context
        rows or on ``data``. See :func:`condfip.report.report`."""
        from condfip.report import report

        return report(self, data)

    def save(self, path):
        """Write this SCM to one safetensors file (atomic); read it back with ``condfip.load_scm``."""
        from condfip.saved import save_scm

        return save_scm(self, path)

    def to_dowhy(self):
        """This SCM as a ``dowhy.gcm.InvertibleStructuralCausalModel`` (needs the ``dowhy`` extra)."""
        from condfip.interop_dowhy import to_dowhy

        return to_dowhy(self)


class ZeroShotModel:
    """A pretrained Cond-FiP network; ``infer(data, graph)`` returns an ``InferredSCM``."""

    def __init__(self, network: CondFiP, card: dict):
        self.network, self.card = network, card

    @property
    def sha256(self) -> str:
        return self.card.get("sha256", "")

    @property
    def max_context(self) -> int:
        return self.network.config.max_context

    def infer(self, data, graph=None, *, abduction: str | None = None,
              noise_model: str = "empirical", context_seed: int = 0, isolated: list[str] | None = None,
              mechanisms: str = DEFAULT_MECHANISMS) -> SCM:
        """Infer the SCM of ``data`` (DataFrame, CSV/Parquet path or named array) on ``graph`` (networkx
        DiGraph with node names = columns, adjacency, edge-list CSV, GML/GraphML; ``isolated``: columns with
        no edges, which the graph must otherwise name). Contexts larger than ``max_context`` rows are
        subsampled (seeded by ``context_seed``). Returns an ``InferredSCM``.

        ``mechanisms``: what generation (samples, interventions, counterfactuals, decoder abduction) runs
        through. ``"kernel"`` (default): kernel ridge regressions of each node on its parents, fitted in closed form
        on the context rows with leave-one-out choices (``condfip.kernel_mechanisms``): a classical per-dataset
        fit, not the network; on the validation suite its mechanism error is less than half the decoder's and on
        the benchmark it generates better than DoWhy-gcm on RFF (README, Results). ``"network"``: the decoder's
        T, the paper's regression-free answer (the bench's ``condfip-network``). Noise abduction with the
        encoder head (the model card's default) is the network's either way.

        ``graph=None``: the graph is discovered from all rows by ``condfip.discover`` with its default method
        (edges carry a ``confidence``; ``scm.report()`` flags the low ones). ``scm.graph_source``
        says where the graph came from: ``"given"`` or ``"discovered: <method>, <k> resamples"``."""
        frame = read_data(data)
        source = "given"
        if graph is None:
            from condfip.discover import discover, graph_source

            graph = discover(frame)
            source = graph_source(graph)
        frame, dag = validate(frame, read_graph(graph, nodes=list(frame.columns), isolated=isolated))
        context = frame
        if len(frame) > self.max_context:
            rows = np.sort(np.random.default_rng(context_seed).choice(len(frame), self.max_context, replace=False))
            context = frame.iloc[rows]
        check_memory(len(context), frame.shape[1], self.network.config)
        abduction = abduction or DEFAULT_ABDUCTION
        scm = InferredSCM(self.network, self.card, context, dag, abduction=abduction, noise_model=noise_model,
                          default_n=len(frame), mechanisms=mechanisms)
        scm.graph_source = source
        return scm


def load_pretrained(path: str | Path | None = None) -> ZeroShotModel:
    """The shipped weights (no network access), or exported weights at ``path`` (folder or .safetensors)."""
    return ZeroShotModel(*build_network(path))


def load_scm(path: str | Path, weights: str | Path | None = None) -> InferredSCM:
    """An SCM saved by ``scm.save(path)``, on the shipped weights or the weights folder/file ``weights``. The
    weights must be the ones it was inferred with (same sha256). It answers exactly as the saved SCM: the stored
    code and standardisation are used, not recomputed (``condfip.saved`` reads and checks the file)."""
    network, card = build_network(weights)
    saved = read_scm(path, card, _weights_paths(weights)[0])
    check_memory(len(saved.context), saved.context.shape[1], card["model"])
    scm = InferredSCM(network, card, saved.context, saved.graph, abduction=saved.abduction,
                      noise_model=saved.noise_model, default_n=saved.default_n, mechanisms=saved.mechanisms)
    scm.mean, scm.std, scm.code, scm.graph_source = saved.mean, saved.std, saved.code, saved.graph_source
    return scm.do(saved.interventions) if saved.interventions else scm
