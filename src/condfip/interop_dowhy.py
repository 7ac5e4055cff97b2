"""DoWhy-gcm interop: ``to_dowhy(scm)`` returns a ``dowhy.gcm.InvertibleStructuralCausalModel``.

Roots get a ``gcm.EmpiricalDistribution`` fitted on their context values. Every other node gets a
:class:`ZeroShotMechanism`, DoWhy's ``InvertibleFunctionalCausalModel`` interface around the inferred
mechanism ``f_i``: ``evaluate(parents, noise) = f_i(parents) + noise`` and
``estimate_noise(target, parents) = target - f_i(parents)``. Parents come in the order DoWhy passes them
(``get_ordered_predecessors``: sorted names). The network needs a full row, so the wrapper builds one with
the parent columns filled and every other column at its context mean (0 after standardisation): exact,
since ``f_i`` depends on the parents of i only. ``fit`` does nothing (the mechanisms are inferred, not
fitted); fresh noise is drawn from the node's abducted context noise (DoWhy's global numpy RNG, so
``gcm.util.general.set_random_seed`` applies).

DoWhy abducts ``x - f(parents)``, the decoder abduction, which is also what ``scm.counterfactual`` uses
(whatever the SCM's ``abduction``): ``gcm.counterfactual_samples`` equals ``scm.counterfactual``.

DoWhy is an optional dependency (``pip install 'condfip[dowhy]'``), imported only here.
"""

from __future__ import annotations

import numpy as np

from condfip.errors import InputError

try:
    from dowhy import gcm
    from dowhy.gcm.causal_mechanisms import InvertibleFunctionalCausalModel
    from dowhy.gcm.causal_models import PARENTS_DURING_FIT
    from dowhy.graph import get_ordered_predecessors
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("to_dowhy() needs DoWhy; fix: pip install 'condfip[dowhy]'") from err


class ZeroShotMechanism(InvertibleFunctionalCausalModel):
    """The inferred additive-noise mechanism of one node of an InferredSCM, for DoWhy-gcm."""

    def __init__(self, scm, node: str, parents: list[str]):
        self.scm, self.node, self.parents = scm, node, list(parents)
        self._j = scm.columns.index(node)
        self._parent_idx = [scm.columns.index(p) for p in self.parents]

    def _f(self, parent_samples: np.ndarray) -> np.ndarray:
        parents = np.asarray(parent_samples, dtype=np.float64)
        if parents.ndim == 1:
            parents = parents.reshape(-1, len(self.parents))
        if parents.shape[1] != len(self.parents):
            raise ValueError(f"node {self.node!r} has parents {self.parents} but got {parents.shape[1]} columns")
        full = np.tile(np.asarray(self.scm.mean, dtype=np.float64), (len(parents), 1))
        full[:, self._parent_idx] = parents
        return self.scm.mechanism_array(full)[:, self._j]

    def evaluate(self, parent_samples: np.ndarray, noise_samples: np.ndarray) -> np.ndarray:
        noise = np.asarray(noise_samples, dtype=np.float64).reshape(-1)
        return (self._f(parent_samples) + noise).reshape(-1, 1)

    def estimate_noise(self, target_samples: np.ndarray, parent_samples: np.ndarray) -> np.ndarray:
        target = np.asarray(target_samples, dtype=np.float64).reshape(-1)
        return (target - self._f(parent_samples)).reshape(-1, 1)

    def context_noise(self) -> np.ndarray:
        """The node's decoder-abducted noise on the context rows (the SCM's own noise pool)."""
        return self.scm.context_noise()[:, self._j]

    def draw_noise_samples(self, num_samples: int) -> np.ndarray:
        noise = self.context_noise()
        if self.scm.noise_model == "gaussian":
            draws = noise.mean() + noise.std(ddof=1) * np.random.standard_normal(num_samples)
        else:
            draws = np.quantile(noise, np.random.random(num_samples))
        return draws.reshape(-1, 1)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Nothing to fit: the mechanism was inferred zero-shot."""

    def clone(self):
        return ZeroShotMechanism(self.scm, self.node, self.parents)

    def __str__(self) -> str:
        return f"ZeroShotMechanism({self.node!r} <- {self.parents})"


def to_dowhy(scm) -> gcm.InvertibleStructuralCausalModel:
    """``scm`` (an InferredSCM without interventions) as a DoWhy-gcm invertible SCM on the same graph."""
    if not hasattr(scm, "context") or not hasattr(scm, "network"):
        raise InputError(f"to_dowhy() needs an inferred SCM, got {type(scm).__name__}")
    if scm.interventions:
        raise InputError(f"to_dowhy() exports the observational SCM but this one has interventions on "
                         f"{list(scm.interventions)}; fix: call it before .do() and pass the interventions "
                         f"to DoWhy's functions")
    graph = scm._graph.copy()
    model = gcm.InvertibleStructuralCausalModel(graph)
    for node in scm.columns:
        parents = get_ordered_predecessors(model.graph, node)
        if parents:
            model.set_causal_mechanism(node, ZeroShotMechanism(scm, node, parents))
        else:
            root = gcm.EmpiricalDistribution()
            root.fit(scm.context[node].to_numpy(dtype=np.float64))
            model.set_causal_mechanism(node, root)
        model.graph.nodes[node][PARENTS_DURING_FIT] = parents
    return model
