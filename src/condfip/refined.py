"""condfip + least squares: a zero-shot SCM whose mechanisms get a per-node linear correction fitted on the context.

``model.infer(data, graph, least_squares=True)`` (bench method ``condfip+ols``): the network's pass stays one
forward pass with no per-dataset fitting; this adds a classical, closed-form estimate on top of its answer, so
the result is not the regression-free zero-shot model. For each node i, the residual of the zero-shot mechanism
on the context rows, ``x_i - f_i(x)``, is regressed by least squares on an intercept and x's parents of i, and
that fit is added to ``f_i``:

    f_refined_i(x) = f_i(x) + c_i + sum_j b_ji x_j        (j over the parents of i)

What the network got right (the nonlinear shape) stays; a linear error (a slope or offset it misjudged, its weak
spot on linear SCMs) is removed. Roots only get an offset. Two mechanisms are corrected, each with its own fit:
the decoder's T (generation, interventions, counterfactuals, the pool fresh noise is drawn from) and, when the
base SCM abducts noise with the encoder head, that head (``noise``). The head's fit reads its answer for the
context rows from ``infer``'s own encoder pass (``context_encoder_mechanism``): no second encoder run over the
context, whose cost grows with n^2. That pass gives the same answer as ``encoder_mechanism_array(context)``,
which appends the context to itself: duplicating every row leaves each attention average over samples unchanged
(they agree to float32 rounding; tests/test_refined.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from condfip.baselines import fit_on_parents, parent_lists
from condfip.errors import InputError
from condfip.scm import SCM, draw_from_pool


class LeastSquaresRefinedSCM(SCM):
    """A zero-shot ``InferredSCM`` (``base``) plus least-squares corrections on the parents (see the module
    docstring). Answers the SCM interface (noise, mechanism, sample, do, counterfactual) in the user's units."""

    def __init__(self, base: SCM):
        if base.interventions:
            raise InputError("refine the observational SCM (model.infer(data, graph, least_squares=True)), then "
                             "call .do(...)")
        super().__init__(base.graph, base.columns, default_n=base.default_n)
        self.base = base
        self.graph_source = base.graph_source
        x = base.context.to_numpy(dtype=np.float64)
        parents = parent_lists(self._graph, self.columns)
        self.coef, self.intercept = fit_on_parents(x, x - base.mechanism_array(x), parents)
        self.encoder_coef = self.encoder_intercept = None
        head = base.card.get("default_abduction") if base.abduction == "auto" else base.abduction
        if head == "encoder":  # "auto": the hybrid corrects the network's abduction on every node
            self.encoder_coef, self.encoder_intercept = fit_on_parents(x, x - base.context_encoder_mechanism,
                                                                       parents)
        self.context_noise = x - self.mechanism_array(x)

    def mechanism_array(self, x: np.ndarray) -> np.ndarray:
        """The corrected T, generation by generation (the calls ``solve`` makes: exact round trips)."""
        return self.mechanism_by_generation(x)

    def mechanism_nodes_array(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        return self.base.mechanism_nodes_array(x, nodes) + self.intercept[nodes] + x @ self.coef[:, nodes]

    def noise(self, data) -> pd.DataFrame:
        """``x - f_refined(x)`` with the base SCM's abduction (decoder or encoder head), each corrected."""
        if self.encoder_coef is None:
            return super().noise(data)
        x, index = self._as_array(data, "data")
        f_x = self.base.encoder_mechanism_array(x) + self.encoder_intercept + x @ self.encoder_coef
        return self._frame(x - f_x, index)

    def counterfactual(self, data, interventions) -> pd.DataFrame:
        """Abduct with the corrected decoder and replay through it (as ``InferredSCM.counterfactual`` does)."""
        return self.do(interventions).sample(noise=SCM.noise(self, data))

    def draw_noise_array(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return draw_from_pool(self.context_noise, n, rng, self.base.noise_model)
