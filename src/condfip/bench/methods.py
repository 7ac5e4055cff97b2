"""The benchmarked methods: each one fits (or infers) an SCM on the context rows and the true graph, and is
then asked everything through the one SCM interface.

- ``condfip``: the shipped weights (``condfip.load_pretrained()``) and the defaults of ``infer``: generation
  through per-node kernel ridge regressions fitted in closed form on the context (``mechanisms="kernel"``,
  ``condfip.kernel_mechanisms``); noise abducted with ``abduction="auto"``: roots and nodes whose regression is a
  line the context leaves no doubt about by ``x - f(x)``, the others by the encoder head.
- ``condfip-network``: ``infer(..., mechanisms="network")``: generation through the decoder's T, the paper's
  regression-free zero-shot answer (the default until the kernel mechanisms measured better).
- ``condfip-decoder`` / ``condfip-encoder`` (optional): the default forced to abduct every node's noise with
  the generating mechanisms (``x - f(x)``) or with the encoder head.
- ``dowhy``: DoWhy-gcm, auto-assigned mechanisms + fit (``condfip.baselines.DoWhySCM``), in a worker process
  with a per-fit time limit when ``timeout`` is set.
- ``ols-parents``: least squares with intercept on the true parents (``condfip.baselines.OLSParentsSCM``).
- ``oracle``: the true SCM (synthetic data only); scores 0 on ``sample``.
- ``zero-noise``: calls the data noiseless (``condfip.baselines.ZeroNoiseSCM``).
"""

from __future__ import annotations

import time
from pathlib import Path

import networkx as nx
import pandas as pd

from condfip.baselines import DoWhySCM, DoWhyWorker, OLSParentsSCM, ZeroNoiseSCM
from condfip.scm import SCM

METHODS = ("condfip", "condfip-network", "dowhy", "ols-parents", "oracle", "zero-noise")
OPTIONAL_METHODS = ("condfip-decoder", "condfip-encoder")
ALL_METHODS = METHODS + OPTIONAL_METHODS


class Methods:
    """Fits the methods; holds the loaded network and the DoWhy worker for the whole run."""

    def __init__(self, *, weights: str | Path | None = None, dowhy_timeout: float | None = None,
                 dowhy_quality: str = "GOOD"):
        self.weights = weights
        self.dowhy_timeout = dowhy_timeout
        self.dowhy_quality = dowhy_quality
        self._model = None
        self._worker: DoWhyWorker | None = None

    @property
    def model(self):
        if self._model is None:
            import condfip

            self._model = condfip.load_pretrained(self.weights)
        return self._model

    @property
    def weights_sha256(self) -> str:
        sha = self.model.sha256
        if not sha:
            from condfip.pretrained import WEIGHTS_DIR, WEIGHTS_FILE, sha256

            path = Path(self.weights) if self.weights else WEIGHTS_DIR
            sha = sha256(path / WEIGHTS_FILE if path.is_dir() else path)
        return sha

    def fit(self, name: str, context: pd.DataFrame, graph: nx.DiGraph, truth: SCM | None = None,
            seed: int = 0) -> tuple[SCM, float]:
        """(the method's SCM, fit seconds). Raises ``FitTimeout`` or the method's own error on failure."""
        if name == "dowhy" and self.dowhy_timeout is not None:
            if self._worker is None:
                self._worker = DoWhyWorker()
            self._worker.start()  # (re)starting the worker is not part of the fit's time
        if name.startswith("condfip"):  # loading the weights is not part of the fit's time either
            _ = self.model
        start = time.perf_counter()
        if name == "condfip":
            scm = self.model.infer(context, graph)
        elif name == "condfip-network":
            scm = self.model.infer(context, graph, mechanisms="network")
        elif name == "condfip-encoder":
            scm = self.model.infer(context, graph, abduction="encoder")
        elif name == "condfip-decoder":
            scm = self.model.infer(context, graph, abduction="decoder")
        elif name == "dowhy":
            if self.dowhy_timeout is None:
                scm = DoWhySCM.fit(context, graph, quality=self.dowhy_quality, seed=seed)
            else:
                scm = self._worker.fit(context, graph, timeout=self.dowhy_timeout, quality=self.dowhy_quality,
                                       seed=seed)
        elif name == "ols-parents":
            scm = OLSParentsSCM.fit(context, graph)
        elif name == "zero-noise":
            scm = ZeroNoiseSCM.fit(context, graph)
        elif name == "oracle":
            if truth is None:
                raise ValueError("the oracle needs the true SCM (synthetic data only)")
            scm = truth
        else:
            raise ValueError(f"unknown method {name!r}; choose from {ALL_METHODS}")
        return scm, time.perf_counter() - start

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
